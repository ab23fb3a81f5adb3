// The task's discussion: comments (live), reactions, quote-reply, editing and deleting one's own, and the composers.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, type Page, type Person, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { reasonFor } from "../../app/errors";
import { liveClient } from "../../app/session";
import type { ChannelMessage } from "../../live";
import { toast } from "../../app/toast";
import { t } from "../../i18n";
import { presenceChanges } from "../../presence";
import { LoadFailed } from "../common/LoadFailed";
import { Composer, type Audience } from "./Composer";
import { FeedbackMarkControl, useFeedbackMarks, type FeedbackMark } from "./FeedbackMark";
import { RichText } from "./Markdown";
import { ReadMarker } from "./read-marker";
import { mergeComment, type Comment } from "./thread-state";
import { TypingTracker } from "./typing";

const REACTIONS = ["👍", "🎉", "❤️", "👀", "✅"];

function timeOf(iso: string): string {
  return new Intl.DateTimeFormat(document.documentElement.lang === "sv" ? "sv-SE" : "en-GB", {
    dateStyle: "short",
    timeStyle: "short",
  }).format(new Date(iso));
}

interface Revision {
  body: string;
  created_at: string;
}

function CommentItem(props: {
  c: Comment;
  who: User;
  names: string[];
  merge: (c: Comment) => void;
  quote: (c: Comment) => void;
  /** Fetch the comment as the server has it now (after a refused edit) and merge it into the thread. */
  refetch: (id: number) => Promise<void>;
  /** Whether the reader may comment (and so react and reply); reactions are shown either way. */
  canComment: boolean;
  /** Staff only: marking a customer's comment as feedback. */
  feedback?: { mark: FeedbackMark | undefined; apply: (commentId: number, mark: FeedbackMark | null) => void };
}) {
  const { c, who } = props;
  const [editing, setEditing] = useState<string | null>(null);
  // The version the edit started from: the server refuses the edit if the comment changed since (another tab,
  // another device), and a newer text that arrives live while editing is shown above the person's own.
  const [base, setBase] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [history, setHistory] = useState<Revision[] | null>(null);
  const mine = c.author?.id === who.id;
  const internal = c.visibility === "internal";

  const react = async (emoji: string, on: boolean) => {
    const path = `/api/comments/${c.id}/reactions`;
    try {
      props.merge(on ? await api<Comment>("DELETE", `${path}/${encodeURIComponent(emoji)}`) : await api<Comment>("POST", path, { emoji }));
    } catch (err) {
      toast(reasonFor(err));
    }
  };
  // (Not while our own save is under way: its live echo may arrive before its answer.)
  const changedMeanwhile = editing !== null && !busy && c.version > base;
  const saveEdit = async () => {
    const body = (editing ?? "").trim();
    if (!body) return setError(t("thread.emptyBody"));
    setBusy(true);
    // Having seen the newer text, saving is the person's choice to replace it: based on the version shown.
    const version = changedMeanwhile ? c.version : base;
    try {
      props.merge(await api<Comment>("PATCH", `/api/comments/${c.id}`, { body, version }));
      setEditing(null);
      setError("");
      setHistory(null);
    } catch (err) {
      const conflict = err instanceof ApiError && (err.code === "version_conflict" || err.code === "deleted");
      if (conflict) {
        // Show what the comment says now; the person's text stays in the box, nothing is overwritten.
        await props.refetch(c.id).catch(() => undefined);
        setError(t(err.code === "deleted" ? "thread.editDeleted" : "thread.editConflict"));
      } else {
        setError(t("thread.editFailed", { reason: reasonFor(err) }));
      }
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    const yes = await confirmDialog({ title: t("thread.deleteTitle"), body: t("thread.deleteBody"), confirm: t("thread.delete"), danger: true });
    if (!yes) return;
    try {
      await api("DELETE", `/api/comments/${c.id}`);
      props.merge({ ...c, deleted: true, body: "", body_html: "", version: c.version + 1 });
    } catch (err) {
      toast(reasonFor(err));
    }
  };
  const showHistory = async () => {
    if (history) return setHistory(null);
    try {
      setHistory((await api<{ items: Revision[] }>("GET", `/api/comments/${c.id}/revisions`)).items);
    } catch (err) {
      toast(reasonFor(err));
    }
  };

  return (
    <li class={`comment${internal ? " comment-internal" : ""}`} id={`comment-${c.id}`}>
      <p class="comment-meta">
        <strong>{c.author?.name ?? "—"}</strong> · <time dateTime={c.created_at}>{timeOf(c.created_at)}</time>
        {c.edited_at && (
          <>
            {" · "}
            <button type="button" class="link" aria-expanded={history !== null} onClick={() => void showHistory()}>
              {t("thread.edited")}
            </button>
          </>
        )}
        {internal && (
          <span class="tag-internal">
            <span aria-hidden="true">🔒 </span>
            {t("thread.internal")}
          </span>
        )}
      </p>
      {history && (
        <ol class="revisions" aria-label={t("thread.history")}>
          {history.map((r, i) => (
            <li key={i}>
              <time dateTime={r.created_at}>{timeOf(r.created_at)}</time>: {r.body}
            </li>
          ))}
        </ol>
      )}
      {c.reply_to && <blockquote class="quote">{`${c.reply_to.author_name ?? "—"}: ${c.reply_to.excerpt}`}</blockquote>}
      {c.deleted ? (
        <>
          <p class="muted">{t("thread.deleted")}</p>
          {editing !== null && (
            <div class="comment-conflict" role="alert">
              <p>{t("thread.editDeleted")}</p>
              <blockquote class="quote">{editing}</blockquote>
              <button type="button" onClick={() => (setEditing(null), setError(""))}>
                {t("common.close")}
              </button>
            </div>
          )}
        </>
      ) : editing !== null ? (
        <div class="comment-edit">
          {changedMeanwhile && (
            <div class="comment-conflict" role="alert" id={`conflict-${c.id}`}>
              <p>{t("thread.editConflict")}</p>
              <RichText html={c.body_html} names={props.names} me={props.who.name} class="comment-body comment-newer" />
            </div>
          )}
          <label for={`edit-${c.id}`} class="visually-hidden">
            {t("thread.edit")}
          </label>
          <textarea id={`edit-${c.id}`} rows={3} value={editing} onInput={(e) => setEditing(e.currentTarget.value)} />
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button type="button" class="primary" disabled={busy} aria-busy={busy} onClick={() => void saveEdit()}>
            {busy ? t("common.saving") : changedMeanwhile ? t("thread.saveMineInstead") : t("thread.save")}
          </button>{" "}
          <button type="button" onClick={() => (setEditing(null), setError(""))}>
            {t("thread.cancel")}
          </button>
        </div>
      ) : (
        <>
          <RichText html={c.body_html} names={props.names} me={props.who.name} class="comment-body" />
          <div class="comment-actions">
            {REACTIONS.map((emoji) => {
              const reaction = c.reactions.find((r) => r.emoji === emoji);
              const on = reaction?.user_ids.includes(who.id) ?? false;
              if (!props.canComment) {
                return reaction ? (
                  <span key={emoji} class="reaction">{`${emoji} ${reaction.count}`}</span>
                ) : null;
              }
              return (
                <button key={emoji} type="button" class={`reaction${on ? " mine" : ""}`} aria-pressed={on} onClick={() => void react(emoji, on)}>
                  {`${emoji}${reaction ? ` ${reaction.count}` : ""}`}
                </button>
              );
            })}
            {props.canComment && (
              <button type="button" class="link" onClick={() => props.quote(c)}>
                {t("thread.reply")}
              </button>
            )}
            {mine && (
              <button type="button" class="link" onClick={() => (setEditing(c.body), setBase(c.version), setError(""))}>
                {t("thread.edit")}
              </button>
            )}
            {(mine || who.role === "owner" || who.role === "admin") && (
              <button type="button" class="link" onClick={() => void remove()}>
                {t("thread.delete")}
              </button>
            )}
            {props.feedback && c.author?.is_customer && (
              <FeedbackMarkControl target={{ kind: "comment", id: c.id }} mark={props.feedback.mark} apply={props.feedback.apply} />
            )}
          </div>
        </>
      )}
    </li>
  );
}

/** A task's discussion. `people` are the project's people to mention: the task page's copy, loaded with the task. */
export function Thread({ taskId, who, people, canComment }: { taskId: number; who: User; people: Person[]; canComment: boolean }) {
  const staff = who.role !== "customer";
  const thread = useRef(new Map<number, Comment>());
  const [, tick] = useState(0);
  const redraw = () => tick((n) => n + 1);
  const [older, setOlder] = useState<string | null>(null);
  // Why the comments or the read position could not be had ("" when they could): each is
  // said in the thread with Try again, never an empty thread that looks like "no comments yet".
  const [commentsFailed, setCommentsFailed] = useState("");
  const [readFailed, setReadFailed] = useState("");
  const [typingNames, setTypingNames] = useState<Map<string, string>>(new Map());
  const [replyTo, setReplyTo] = useState<{ comment: Comment; audience: Audience } | null>(null);
  const [moved, setMoved] = useState<{ to: Audience; text: string; n: number } | null>(null);
  const [showInternal, setShowInternal] = useState(false);
  const typing = useRef<TypingTracker | null>(null);
  const feedback = useFeedbackMarks(taskId, staff);
  typing.current ??= new TypingTracker({ send: (room, on) => liveClient().sendPresence(room, { typing: on }) });

  const merge = (c: Comment) => {
    if (mergeComment(thread.current, c)) redraw();
  };
  // One comment as the server has it now: the thread is paged newest first, so look back until it turns up.
  const refetch = async (id: number) => {
    let cursor: string | null = null;
    do {
      const page: Page<Comment> = await api("GET", `/api/tasks/${taskId}/comments?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
      const found = page.items.find((x) => x.id === id);
      if (found) return merge(found);
      cursor = page.next_cursor;
    } while (cursor);
  };
  // One per task: how far this reader has read it, and whether the server has that.
  const reads = useRef<{ taskId: number; marker: ReadMarker } | null>(null);
  if (reads.current?.taskId !== taskId) {
    const marker = new ReadMarker({
      send: (commentId) => api("POST", `/api/tasks/${taskId}/read`, { comment_id: commentId }),
      report: (failure) => setReadFailed(failure === null ? "" : reasonFor(failure)),
    });
    reads.current = { taskId, marker };
  }
  const markRead = (commentId: number) => void reads.current!.marker.mark(commentId);

  const load = async () => {
    try {
      const page = await api<Page<Comment>>("GET", `/api/tasks/${taskId}/comments?limit=50`);
      for (const c of page.items) mergeComment(thread.current, c);
      setOlder((o) => o ?? page.next_cursor);
      setCommentsFailed("");
      redraw();
      const newest = Math.max(0, ...thread.current.keys());
      if (newest) markRead(newest);
    } catch (err) {
      setCommentsFailed(reasonFor(err));
    }
  };

  useEffect(() => {
    const live = liveClient();
    void load();
    const offThread = live.subscribe(`task:${taskId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event") {
        const data = message.event.data;
        if (data.type === "feedback.marked") {
          feedback.apply(data.comment_id as number, data.mark as FeedbackMark | null);
        } else if (typeof data.type === "string" && data.type.startsWith("comment.")) {
          const comment = data.comment as Comment;
          const held = thread.current.get(comment.id);
          if (held && data.type === "comment.reactions" && held.version === comment.version) {
            thread.current.set(comment.id, { ...held, reactions: comment.reactions });
          } else {
            mergeComment(thread.current, comment);
          }
          redraw();
          if (data.type === "comment.created" && document.visibilityState === "visible") markRead(comment.id);
        }
      } else if (message.kind === "reload") {
        void load();
      }
    });
    type Here = { client_id: string; user_id: string; name: string; data?: { typing?: boolean } };
    // Who is typing in a room: its presence list when we join (someone may be typing already), then its changes.
    const showTyping = (room: string) => (message: ChannelMessage) => {
      if (message.kind === "subscribed") live.requestPresence(room);
      if (message.kind !== "presence") return;
      const frame = message.frame;
      setTypingNames((old) => {
        const next = new Map(old);
        if (frame.type === "presence_list") {
          for (const id of [...next.keys()]) if (id.startsWith(`${room}|`)) next.delete(id);
          for (const p of (frame.clients ?? []) as Here[]) {
            if (p.user_id !== String(who.id) && p.data?.typing) next.set(`${room}|${p.client_id}`, p.name);
          }
          return next;
        }
        const { here, gone } = presenceChanges(frame);
        if (!here.length && !gone.length) return old;
        for (const p of gone) next.delete(`${room}|${p.client_id}`);
        for (const p of here as Here[]) {
          if (p.user_id === String(who.id)) continue;
          if (p.data?.typing) next.set(`${room}|${p.client_id}`, p.name);
          else next.delete(`${room}|${p.client_id}`);
        }
        return next;
      });
    };
    const shared = `room:task:${taskId}`;
    const internal = `room:task:${taskId}:staff`;
    const offRoom = live.subscribe(shared, showTyping(shared));
    const offStaffRoom = staff ? live.subscribe(internal, showTyping(internal)) : () => undefined;
    return () => {
      typing.current?.stop();
      offThread();
      offRoom();
      offStaffRoom();
    };
  }, [taskId]);

  const loadOlder = async () => {
    if (!older) return;
    try {
      const page = await api<Page<Comment>>("GET", `/api/tasks/${taskId}/comments?limit=50&cursor=${older}`);
      for (const c of page.items) mergeComment(thread.current, c);
      setOlder(page.next_cursor);
      redraw();
    } catch (err) {
      toast(reasonFor(err)); // the button stays, to press again
    }
  };

  const quote = (c: Comment) => {
    // A shared comment cannot quote an internal one (the API refuses): an internal one is answered internally.
    const audience: Audience = c.visibility === "internal" ? "internal" : "shared";
    if (audience === "internal") setShowInternal(true);
    setReplyTo({ comment: c, audience });
  };
  const sorted = [...thread.current.values()].sort((a, b) => a.id - b.id);
  // Anyone who can be mentioned here, the reader (a mention of me matters most) and whoever wrote in the thread.
  const names = [...new Set([who.name, ...people.map((p) => p.name), ...sorted.flatMap((c) => (c.author ? [c.author.name] : []))])];
  const typingLine = [...new Set(typingNames.values())].join(", ");
  const composer = (audience: Audience) => (
    <Composer
      audience={audience}
      taskId={taskId}
      staff={staff}
      people={people}
      typing={typing.current!}
      replyTo={replyTo?.audience === audience ? replyTo.comment : null}
      clearReply={() => setReplyTo(null)}
      onPosted={(c) => {
        merge(c);
        markRead(c.id);
      }}
      onMoveDraft={
        staff
          ? (text) => {
              const to: Audience = audience === "shared" ? "internal" : "shared";
              if (to === "internal") setShowInternal(true);
              setMoved({ to, text, n: (moved?.n ?? 0) + 1 });
            }
          : undefined
      }
      incoming={moved?.to === audience ? moved : null}
      focusToken={replyTo?.audience === audience ? replyTo.comment.id : 0}
      focusOnMount={audience === "internal"}
    />
  );

  return (
    <section aria-labelledby="thread-title">
      <h2 id="thread-title">{t("thread.title")}</h2>
      {older && (
        <button type="button" class="link" onClick={() => void loadOlder()}>
          {t("thread.older")}
        </button>
      )}
      <ol class="thread">
        {sorted.map((c) => (
          <CommentItem
            key={c.id}
            c={c}
            who={who}
            names={names}
            merge={merge}
            quote={quote}
            refetch={refetch}
            canComment={canComment}
            feedback={staff ? { mark: feedback.marks.get(c.id), apply: feedback.apply } : undefined}
          />
        ))}
        {!sorted.length && !commentsFailed && <li class="muted">{t("thread.empty")}</li>}
      </ol>
      {commentsFailed && (
        <LoadFailed id="thread-failed" text={t("thread.loadFailed", { reason: commentsFailed })} retry={load} />
      )}
      {readFailed && (
        <LoadFailed
          id="thread-read-failed"
          quiet
          text={t("thread.readFailed", { reason: readFailed })}
          retry={() => reads.current!.marker.retry()}
        />
      )}
      <p class="typing muted" role="status">
        {typingLine ? t("thread.typing", { names: typingLine }) : ""}
      </p>
      {canComment && composer("shared")}
      {staff &&
        (showInternal ? (
          composer("internal")
        ) : (
          <button type="button" id="open-internal" class="open-internal" data-staff-only onClick={() => setShowInternal(true)}>
            <span aria-hidden="true">🔒 </span>
            {t("thread.writeInternal")}
          </button>
        ))}
    </section>
  );
}
