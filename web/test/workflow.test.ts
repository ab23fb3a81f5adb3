import { describe, expect, it } from "vitest";
import type { Status } from "../src/api";
import {
  checkColour,
  checkFieldKey,
  checkStatusName,
  keyFromLabel,
  mayConfigure,
  parseOptions,
  parseWip,
  reorder,
  wipLabel,
} from "../src/workflow-api";

const status = (id: number, position: number, name = `S${id}`): Status => ({
  id,
  name,
  position,
  category: "todo",
  colour: "#000000",
});

describe("reorder", () => {
  it("swaps with the neighbour and sends only the positions that change", () => {
    const statuses = [status(1, 0), status(2, 1), status(3, 2)];
    expect(reorder(statuses, 2, -1)).toEqual([
      { id: 3, position: 1 },
      { id: 2, position: 2 },
    ]);
    expect(reorder(statuses, 0, 1)).toEqual([
      { id: 2, position: 0 },
      { id: 1, position: 1 },
    ]);
  });
  it("renumbers gaps and ties so the new order is the one stored", () => {
    const statuses = [status(1, 0), status(2, 0), status(3, 7)];
    expect(reorder(statuses, 1, 1)).toEqual([
      { id: 3, position: 1 },
      { id: 2, position: 2 },
    ]);
  });
  it("does nothing past either end", () => {
    const statuses = [status(1, 0), status(2, 1)];
    expect(reorder(statuses, 0, -1)).toEqual([]);
    expect(reorder(statuses, 1, 1)).toEqual([]);
  });
});

describe("the API's checks, before sending", () => {
  it("status names: required, at most 80, unique ignoring case", () => {
    expect(checkStatusName("  ")).toBe("required");
    expect(checkStatusName("x".repeat(81))).toBe("tooLong");
    expect(checkStatusName("review", [status(1, 0, "Review")])).toBe("duplicate");
    expect(checkStatusName("Review", [status(1, 0, "Done")])).toBe("");
  });
  it("colours are #rrggbb", () => {
    expect(checkColour("#1f6feb")).toBe("");
    expect(checkColour("#1f6fe")).toBe("colour");
    expect(checkColour("blue")).toBe("colour");
  });
  it("WIP limits: empty is none, else a whole number 1..10000", () => {
    expect(parseWip("")).toEqual({ value: null, problem: "" });
    expect(parseWip(" 4 ")).toEqual({ value: 4, problem: "" });
    expect(parseWip("0").problem).toBe("wip");
    expect(parseWip("10001").problem).toBe("wip");
    expect(parseWip("2.5").problem).toBe("wip");
    expect(parseWip("-1").problem).toBe("wip");
  });
  it("field keys follow the API's pattern and are unique", () => {
    expect(checkFieldKey("", [])).toBe("required");
    expect(checkFieldKey("1st", [])).toBe("key");
    expect(checkFieldKey("Budget", [])).toBe("key");
    expect(checkFieldKey("budget", [{ key: "budget" }])).toBe("duplicate");
    expect(checkFieldKey("budget_sek", [])).toBe("");
    expect(checkFieldKey("a".repeat(41), [])).toBe("key");
  });
  it("a key is suggested from the label", () => {
    expect(keyFromLabel("Due by (date)")).toBe("due_by_date");
    expect(keyFromLabel("Önskat leveransdatum")).toBe("onskat_leveransdatum");
    expect(keyFromLabel("2 Budget!")).toBe("budget");
    expect(checkFieldKey(keyFromLabel("x".repeat(60)), [])).toBe("");
  });
  it("choice options: one a line, at least one", () => {
    expect(parseOptions("a\n\n b \n")).toEqual({ options: ["a", "b"], problem: "" });
    expect(parseOptions(" \n").problem).toBe("options");
    expect(parseOptions("x".repeat(101)).problem).toBe("tooLong");
  });
});

describe("wipLabel", () => {
  it("shows the count over the limit, full at the limit", () => {
    expect(wipLabel(3, 4)).toEqual({ text: "3 / 4", full: false });
    expect(wipLabel(4, 4)).toEqual({ text: "4 / 4", full: true });
    expect(wipLabel(2, null)).toEqual({ text: "2", full: false });
  });
});

describe("mayConfigure", () => {
  const user = (role: "owner" | "admin" | "staff" | "customer") => ({ id: 1, name: "A", email: "a@x", role }) as never;
  it("settings are for admins and the project's staff managers; milestones for staff", () => {
    expect(mayConfigure.project(user("admin"), { my_role: null })).toBe(true);
    expect(mayConfigure.project(user("staff"), { my_role: "manager" })).toBe(true);
    expect(mayConfigure.project(user("staff"), { my_role: "member" })).toBe(false);
    expect(mayConfigure.project(user("customer"), { my_role: "customer" })).toBe(false);
    expect(mayConfigure.milestones(user("staff"))).toBe(true);
    expect(mayConfigure.milestones(user("customer"))).toBe(false);
  });
});
