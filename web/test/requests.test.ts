import { describe, expect, it } from "vitest";
import { applyRequestEvent, fieldValue, type TandemRequest } from "../src/screens/requests/state";
import { formatSize } from "../src/screens/files/files";

const request = (id: number, version: number, extra: Partial<TandemRequest> = {}): TandemRequest => ({
  id,
  project_id: 1,
  title: `request ${id}`,
  description: "",
  priority: "normal",
  status: "open",
  fields: {},
  created_by: null,
  task_id: null,
  decline_reason: "",
  version,
  created_at: "2026-05-12T10:00:00Z",
  history: [],
  ...extra,
});

describe("applyRequestEvent", () => {
  it("adds new requests newest first and keeps only newer versions", () => {
    let queue = [request(1, 1)];
    queue = applyRequestEvent(queue, { type: "request.created", request: request(2, 1) });
    expect(queue.map((r) => r.id)).toEqual([2, 1]);
    queue = applyRequestEvent(queue, { type: "request.updated", request: request(1, 3, { status: "accepted" }) });
    expect(queue.find((r) => r.id === 1)?.status).toBe("accepted");
    queue = applyRequestEvent(queue, { type: "request.updated", request: request(1, 2, { status: "needs_info" }) });
    expect(queue.find((r) => r.id === 1)?.status).toBe("accepted");
    expect(applyRequestEvent(queue, { type: "task.updated" })).toBe(queue);
  });
});

describe("fieldValue", () => {
  it("sends numbers as numbers and empty inputs as null", () => {
    expect(fieldValue("number", " 12.5 ")).toBe(12.5);
    expect(fieldValue("number", "lots")).toBe("lots");
    expect(fieldValue("text", "  ")).toBeNull();
    expect(fieldValue("date", "2031-02-03")).toBe("2031-02-03");
  });
});

describe("formatSize", () => {
  it("reads like a person would say it", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(6 * 1024 * 1024 + 123)).toBe("6.0 MB");
  });
});
