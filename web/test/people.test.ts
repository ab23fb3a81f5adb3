import { describe, expect, it } from "vitest";
import type { User } from "../src/api";
import { ApiError } from "../src/api";
import { may } from "../src/people-api";
import { explain } from "../src/screens/people/ui";

const person = (role: User["role"]): User => ({ id: 1, name: "P", email: null, role, client_id: null, locale: "en" });

describe("what each role is offered (the server's policy, restated)", () => {
  it("lets owners and admins create and delete projects and manage clients", () => {
    for (const role of ["owner", "admin"] as const) {
      expect(may.createProject(person(role))).toBe(true);
      expect(may.deleteProject(person(role))).toBe(true);
      expect(may.manageClients(person(role))).toBe(true);
    }
    for (const role of ["staff", "customer"] as const) {
      expect(may.createProject(person(role))).toBe(false);
      expect(may.manageClients(person(role))).toBe(false);
    }
  });

  it("lets only owners change staff", () => {
    expect(may.manageStaff(person("owner"))).toBe(true);
    expect(may.manageStaff(person("admin"))).toBe(false);
  });

  it("lets staff manage a project only where they are its manager", () => {
    expect(may.manageProject(person("staff"), { my_role: "manager" })).toBe(true);
    expect(may.manageProject(person("staff"), { my_role: "member" })).toBe(false);
    expect(may.manageProject(person("admin"), { my_role: null })).toBe(true);
    expect(may.manageProject(person("customer"), { my_role: "manager" })).toBe(false);
  });

  it("offers staff roles for new people to admins only, and each member the roles of their kind", () => {
    expect(may.inviteRoles(person("owner"))).toEqual(["customer", "viewer", "member", "manager"]);
    expect(may.inviteRoles(person("staff"))).toEqual(["customer", "viewer"]);
    expect(may.rolesFor({ is_customer: true })).toEqual(["customer", "viewer"]);
    expect(may.rolesFor({ is_customer: false })).toEqual(["member", "manager"]);
  });
});

describe("explain", () => {
  it("puts a 422's field errors beside their fields and names the rest", () => {
    const refused = new ApiError(422, "invalid", "Some fields are invalid.", [
      { field: "body.email", message: "value is not a valid email address", type: "value_error" },
    ]);
    const { fields, message } = explain(refused);
    expect(fields.email).toBe("Not in the expected form.");
    expect(message).toBe("Check the marked fields.");
    expect(explain(new ApiError(409, "already_member", "This person is already a member.")).message).toBe(
      "This person is already a member of the project.",
    );
  });
});
