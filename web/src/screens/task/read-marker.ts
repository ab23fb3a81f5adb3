// How far the reader has read a thread, told to the server. The server only moves a read position forward, so a
// later mark covers an earlier one that failed: a failure is reported only while nothing at or past it is stored,
// and every mark (and Try again) sends the furthest position the reader has reached.

export interface ReadMarkerOptions {
  /** Store the read position; rejects when the server did not. */
  send: (commentId: number) => Promise<unknown>;
  /** Why the furthest position is not stored (to show, with Try again), or null once it is. */
  report: (failure: unknown) => void;
}

export class ReadMarker {
  private stored = 0;
  private reached = 0;

  constructor(private readonly opts: ReadMarkerOptions) {}

  /** The reader has seen the thread up to `commentId`. Settles when the server has answered; never rejects. */
  async mark(commentId: number): Promise<void> {
    this.reached = Math.max(this.reached, commentId);
    const target = this.reached;
    if (target <= this.stored) return;
    try {
      await this.opts.send(target);
      this.stored = Math.max(this.stored, target);
      if (this.stored >= this.reached) this.opts.report(null);
    } catch (err) {
      if (target > this.stored) this.opts.report(err);
    }
  }

  /** Send the furthest position reached again (after a failure). */
  retry(): Promise<void> {
    return this.mark(this.reached);
  }
}
