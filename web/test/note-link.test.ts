import { describe, expect, it } from "vitest";
import { normaliseLink } from "../src/screens/notes/link";

describe("normaliseLink", () => {
  it("keeps web, mail and phone addresses", () => {
    expect(normaliseLink("https://example.com/brief?a=1")).toBe("https://example.com/brief?a=1");
    expect(normaliseLink(" http://example.com ")).toBe("http://example.com");
    expect(normaliseLink("mailto:anna@example.com")).toBe("mailto:anna@example.com");
    expect(normaliseLink("tel:+46-8-123-45")).toBe("tel:+46-8-123-45");
  });

  it("completes a bare domain or email address", () => {
    expect(normaliseLink("example.com/brief")).toBe("https://example.com/brief");
    expect(normaliseLink("anna@example.com")).toBe("mailto:anna@example.com");
  });

  it("refuses scripts, data and words", () => {
    for (const bad of ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "not a link", "", "   ", "vbscript:x"]) {
      expect(normaliseLink(bad)).toBeNull();
    }
  });
});
