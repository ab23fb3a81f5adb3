// "X is typing": said in the room of the audience being written to, and taken back from that same room when the
// writer stops, sends, or moves to the other audience (so a customer is never left seeing staff "typing" a note
// that went internal).

export const TYPING_IDLE_MS = 4000;

export interface TypingOptions {
  send: (room: string, typing: boolean) => void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export class TypingTracker {
  private room: string | null = null;
  private timer: unknown = null;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: TypingOptions) {
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** A key was typed for `room`'s audience. */
  typed(room: string): void {
    if (this.room !== room) {
      this.stop();
      this.room = room;
      this.opts.send(room, true);
    }
    this.clearTimer(this.timer);
    this.timer = this.setTimer(() => this.stop(), TYPING_IDLE_MS);
  }

  /** Typing ended (idle, sent, left the page): the room that was told "typing" is told it stopped. */
  stop(): void {
    this.clearTimer(this.timer);
    this.timer = null;
    if (this.room !== null) this.opts.send(this.room, false);
    this.room = null;
  }
}
