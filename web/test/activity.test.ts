import { afterEach, describe, expect, it } from "vitest";
import { setLocale } from "../src/i18n";
import { changeLines, describe as say, isNew, type ActivityEvent } from "../src/screens/activity/activity-api";

const event = (over: Partial<ActivityEvent>): ActivityEvent => ({
  id: 1,
  project_id: 1,
  kind: "task.updated",
  internal: false,
  title: "Homepage",
  changes: {},
  actor_name: "Anna",
  task_id: 3,
  milestone_id: null,
  comment_id: null,
  request_id: null,
  link: "/projects/1/tasks/3",
  created_at: "2026-12-06T10:00:00Z",
  ...over,
});

describe("activity wording", () => {
  afterEach(() => setLocale("en"));

  it("says what happened and what changed, old → new, in the person's language", () => {
    const changed = event({ changes: { due_date: [null, "2031-01-01"], status: ["To do", "In progress"] } });
    expect(say(changed)).toBe("Anna changed Homepage");
    expect(changeLines(changed)).toEqual(["Due date: none → 1 Jan 2031", "Status: To do → In progress"]);
    setLocale("sv");
    expect(say(changed)).toBe("Anna ändrade Homepage");
    expect(changeLines(changed)[0]).toMatch(/^Förfallodatum: inget → 1 jan\.? 2031$/);
    expect(say(event({ kind: "request.updated", changes: { status: [null, "accepted"] } }))).toBe(
      "Önskemålet Homepage är nu: Accepterad",
    );
  });

  it("marks only what is newer than the last visit, and nothing on a first visit", () => {
    expect(isNew(event({}), "2026-12-06T09:00:00Z")).toBe(true);
    expect(isNew(event({}), "2026-12-06T11:00:00Z")).toBe(false);
    expect(isNew(event({}), null)).toBe(false);
  });

  it("words an unknown kind without failing", () => {
    expect(say(event({ kind: "something.new" }))).toBe("Anna: Homepage");
  });
});
