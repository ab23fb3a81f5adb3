// A task thread's comments and how they merge; pure, so it is tested without a browser.

export interface Comment {
  id: number;
  task_id: number;
  author: { id: number; name: string; is_customer: boolean } | null;
  body: string;
  body_html: string;
  visibility: "internal" | "shared";
  reply_to: { id: number; author_name: string | null; excerpt: string; deleted: boolean } | null;
  reactions: { emoji: string; count: number; user_ids: number[] }[];
  version: number;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
}

/** Merge a comment into the thread: newer versions win, so late or duplicate events change nothing. */
export function mergeComment(thread: Map<number, Comment>, comment: Comment): boolean {
  const held = thread.get(comment.id);
  if (held && held.version > comment.version) return false;
  if (held && held.version === comment.version && comment.reactions === held.reactions) return false;
  thread.set(comment.id, comment);
  return true;
}
