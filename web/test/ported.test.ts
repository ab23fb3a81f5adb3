import { describe, expect, it } from "vitest";
import { changedSettings, mayUse, takesPart } from "../src/screens/common/permissions";
import { mayManage } from "../src/screens/files/files";
import { answersOf, type RequestField } from "../src/screens/requests/state";
import { droppedOptions } from "../src/workflow-api";

const on = { customer_comment: true, customer_requests: true, customer_upload: true, customer_edit_notes: true, customer_move_own: true };

describe("what a role is offered", () => {
  it("offers a capability to staff, and to customer members only while it is on; never to viewers", () => {
    expect(mayUse(true, null, null, "customer_upload")).toBe(true);
    expect(mayUse(false, "customer", on, "customer_upload")).toBe(true);
    expect(mayUse(false, "customer", { ...on, customer_upload: false }, "customer_upload")).toBe(false);
    expect(mayUse(false, "viewer", on, "customer_upload")).toBe(false);
    expect(takesPart(false, "viewer")).toBe(false);
    expect(takesPart(false, "customer")).toBe(true);
  });
  it("reads new settings from a settings.changed event only", () => {
    expect(changedSettings({ type: "settings.changed", settings: on })).toEqual(on);
    expect(changedSettings({ type: "task.updated" })).toBeNull();
  });
  it("lets a customer change only their own files, and only while upload is on", () => {
    const mine = { uploaded_by: { id: 7, name: "C" } };
    expect(mayManage(mine, { id: 7 }, false, true)).toBe(true);
    expect(mayManage(mine, { id: 7 }, false, false)).toBe(false);
    expect(mayManage(mine, { id: 8 }, false, true)).toBe(false);
    expect(mayManage({ uploaded_by: null }, { id: 1 }, true, false)).toBe(true);
  });
});

describe("request fields", () => {
  const fields: RequestField[] = [
    { id: 1, key: "browser", label: "Which browser?", kind: "choice", required: true, options: ["Chrome"], position: 0 },
    { id: 2, key: "budget", label: "Budget", kind: "number", required: false, options: [], position: 1 },
  ];
  it("shows answers under their labels in the form's order, removed fields' answers last under their key", () => {
    expect(answersOf({ fields: { budget: 5, old: "x", browser: "Firefox" } }, fields)).toEqual([
      ["Which browser?", "Firefox"],
      ["Budget", "5"],
      ["old", "x"],
    ]);
  });
  it("names the options an edit takes away", () => {
    expect(droppedOptions(["a", "b", "c"], ["a", "c", "d"])).toEqual(["b"]);
  });
});
