// The header's bell: the unread count, live, and the inbox panel (newest first, links to the items, mark read).
import { useEffect, useRef, useState } from "preact/hooks";
import { locale, t, tn, type MessageKey } from "../../i18n";
import type { LiveClient } from "../../live";
import { LoadFailed } from "../common/LoadFailed";
import {
  followPersonal,
  inbox,
  KNOWN_KINDS,
  loadInbox,
  markRead,
  noticeLink,
  noticeText,
  UNREAD_CAP,
  type Notice,
} from "./state";
import "./inbox.css";

const KIND_ICONS: Record<string, string> = { mention: "@", assignment: "→", request: "✉", status: "⇄", feedback: "★" };

function when(iso: string): string {
  return new Intl.DateTimeFormat(locale() === "sv" ? "sv-SE" : "en-GB", { dateStyle: "short", timeStyle: "short" }).format(
    new Date(iso),
  );
}

function kindWord(kind: string): string {
  return t((KNOWN_KINDS.includes(kind) ? `inbox.kind.${kind}` : "inbox.kind.other") as MessageKey);
}

function NoticeRow({ notice, close }: { notice: Notice; close: () => void }) {
  const href = noticeLink(notice);
  const unread = notice.read_at === null;
  const open = () => {
    if (unread) void markRead([notice.id]); // a refusal is undone and said in a toast
    close();
  };
  return (
    <li class={`notice${unread ? " notice-unread" : ""}`} data-notification-id={notice.id} data-kind={notice.kind}>
      <span class="notice-kind">
        <span aria-hidden="true">{KIND_ICONS[notice.kind] ?? "•"}</span> {kindWord(notice.kind)}
      </span>
      {href ? (
        <a class="notice-text" href={href} onClick={open}>
          {noticeText(notice)}
        </a>
      ) : (
        <span class="notice-text">{noticeText(notice)}</span>
      )}
      <span class="notice-meta">
        {unread && <span class="notice-new">{t("inbox.new")}</span>}
        <time dateTime={notice.created_at}>{when(notice.created_at)}</time>
        {unread && (
          <button type="button" class="link" onClick={() => void markRead([notice.id])}>
            {t("inbox.markRead")}
          </button>
        )}
      </span>
    </li>
  );
}

export function Bell({ userId, live }: { userId: number; live: LiveClient }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);
  useEffect(() => followPersonal(live, userId), [live, userId]);
  useEffect(() => {
    if (!open) return;
    panel.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") close();
    };
    const onClick = (e: MouseEvent) => {
      const target = e.target as Node;
      if (!panel.current?.contains(target) && !button.current?.contains(target)) setOpen(false);
    };
    addEventListener("keydown", onKey);
    addEventListener("mousedown", onClick);
    return () => {
      removeEventListener("keydown", onKey);
      removeEventListener("mousedown", onClick);
    };
  }, [open]);
  const close = () => {
    setOpen(false);
    button.current?.focus();
  };
  const { items, unread, failed } = inbox.value;
  const shown = unread >= UNREAD_CAP ? "99+" : String(unread);
  return (
    <div class="bell">
      <button
        ref={button}
        type="button"
        id="bell"
        class="bell-button"
        aria-expanded={open}
        aria-controls={open ? "inbox" : undefined}
        aria-label={tn("inbox.open", unread)}
        onClick={() => setOpen(!open)}
      >
        <span aria-hidden="true">🔔</span>
        {unread > 0 && (
          <span class="bell-count" data-count={unread} aria-hidden="true">
            {shown}
          </span>
        )}
      </button>
      {open && (
        <div ref={panel} id="inbox" class="inbox" role="dialog" aria-label={t("inbox.title")} tabIndex={-1}>
          <div class="inbox-head">
            <h2>{t("inbox.title")}</h2>
            <button type="button" class="link" disabled={unread === 0} onClick={() => void markRead("all")}>
              {t("inbox.markAllRead")}
            </button>
            <button type="button" class="link inbox-close" onClick={close}>
              {t("inbox.close")}
            </button>
          </div>
          {failed && (
            <LoadFailed class="inbox-failed" text={t("inbox.failed", { reason: failed })} retry={loadInbox} />
          )}
          {items.length ? (
            <ul class="notices">
              {items.map((n) => (
                <NoticeRow key={n.id} notice={n} close={close} />
              ))}
            </ul>
          ) : (
            !failed && <p class="muted">{t("inbox.none")}</p>
          )}
        </div>
      )}
    </div>
  );
}
