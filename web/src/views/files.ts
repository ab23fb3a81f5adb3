// A project's files: list, download, upload (streamed by the browser as the request body) and new versions.
import { api, ApiError, upload, type User } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { projectNav } from "./common";
import type { LiveClient } from "../live";
import { reasonFor } from "../app/errors";

export interface StoredFile {
  id: number;
  name: string;
  content_type: string;
  size: number;
  version: number;
  visibility: "internal" | "shared";
  task_id: number | null;
  request_id: number | null;
  download_url: string;
}

const UNITS = ["B", "KB", "MB", "GB"];

export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

export async function renderFiles(
  root: HTMLElement,
  projectId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  const staff = user.role !== "customer";
  // A customer uploads only where the project's settings allow it (the API refuses otherwise).
  const settings = await api<{ customer_upload: boolean }>("GET", `/api/projects/${projectId}/settings`);
  const mayUpload = staff || settings.customer_upload;
  const list = h("ul", { class: "file-list", "aria-live": "polite" });
  const message = h("p", { class: "error", role: "alert" });
  const report = (error: unknown) => {
    message.textContent = error instanceof ApiError ? reasonFor(error) : t("files.failed");
  };

  const newVersion = (file: StoredFile): HTMLElement => {
    const input = h("input", { type: "file", "aria-label": t("files.newVersion", { name: file.name }) });
    input.addEventListener("change", async () => {
      const chosen = input.files?.[0];
      if (!chosen) return;
      try {
        await upload(`/api/files/${file.id}/versions`, chosen, { name: chosen.name });
        await draw();
      } catch (error) {
        report(error);
      }
    });
    return input;
  };

  const draw = async (): Promise<void> => {
    const files = (await api<{ items: StoredFile[] }>("GET", `/api/projects/${projectId}/files`)).items;
    list.replaceChildren(
      ...(files.length
        ? files.map((f) =>
            h(
              "li",
              { "data-file-id": String(f.id) },
              h("a", { href: f.download_url, download: f.name }, f.name),
              h("span", { class: "muted" }, ` · ${formatSize(f.size)} · ${t("files.version", { n: String(f.version) })}`),
              f.visibility === "internal" ? h("span", { class: "tag-internal" }, t("task.internal")) : null,
              " ",
              mayUpload ? newVersion(f) : null,
            ),
          )
        : [h("li", { class: "muted" }, t("files.empty"))]),
    );
  };

  const chooser = h("input", { id: "file-upload", type: "file", multiple: true });
  const visibility = h(
    "select",
    { id: "file-visibility", "data-staff-only": true },
    h("option", { value: "internal" }, t("files.internal")),
    h("option", { value: "shared" }, t("files.shared")),
  );
  const form = h(
    "form",
    { class: "upload-form" },
    h("label", { for: "file-upload" }, t("files.upload")),
    chooser,
    staff ? h("label", { for: "file-visibility", "data-staff-only": true }, t("files.visibility")) : null,
    staff ? visibility : null,
    h("button", { type: "submit" }, t("files.send")),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      for (const file of Array.from(chooser.files ?? [])) {
        const params: Record<string, string> = { name: file.name };
        if (staff) params.visibility = visibility.value;
        await upload(`/api/projects/${projectId}/files`, file, params);
      }
      form.reset();
      message.textContent = "";
      await draw();
    } catch (error) {
      report(error);
    }
  });

  await draw();
  const off = live.subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
    if (message.kind === "event" && String(message.event.data.type).startsWith("file.")) void draw();
  });
  mount(
    root,
    h(
      "main",
      { class: "page" },
      projectNav(projectId, "files", user.role !== "customer"),
      h("h1", {}, t("files.title")),
      mayUpload ? form : h("p", { class: "muted", id: "upload-off" }, t("files.uploadOff")),
      list,
    ),
  );
  return off;
}
