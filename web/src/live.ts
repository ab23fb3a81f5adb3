// The live hub client: one WebSocket, many channels, ordered events, resume after reconnect.
// See docs/PROTOCOL.md. Transport and timers are injectable so the logic is tested without a network.

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline" | "signed-out";

export interface Position {
  offset: number;
  epoch: string;
}

export interface LiveEvent {
  type: "event";
  channel: string;
  offset: number;
  epoch: string;
  /** When the broker accepted the publication (ms since the Unix epoch); absent on ephemeral events. */
  ts?: number;
  data: Record<string, unknown>;
}

/** What a channel handler receives: an event, or "reload" when events were lost and state must be refetched. */
export type ChannelMessage =
  | { kind: "event"; event: LiveEvent }
  | { kind: "reload" }
  | { kind: "revoked" }
  | { kind: "presence"; frame: Record<string, unknown> }
  | { kind: "subscribed" };
export type ChannelHandler = (message: ChannelMessage) => void;

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveOptions {
  url: string;
  socketFactory?: (url: string) => SocketLike;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  random?: () => number;
  pingIntervalMs?: number;
  maxBackoffMs?: number;
  clock?: () => number;
}

// Closing codes after which reconnecting cannot help.
const FINAL_CODES = new Set([4401, 4403, 4400, 1009]);

export function backoffDelay(attempt: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, 250 * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2); // jitter spreads reconnect storms
}

export function splitFrames(message: string): Record<string, unknown>[] {
  return message
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export class LiveClient {
  state: ConnectionState = "connecting";
  readonly positions = new Map<string, Position>();
  private readonly handlers = new Map<string, ChannelHandler>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private socket: SocketLike | null = null;
  private attempt = 0;
  private nextId = 1;
  private pingTimer: unknown = null;
  private retryTimer: unknown = null;
  private stopped = false;
  private lastHeard = 0;
  private readonly opts: Required<LiveOptions>;

  constructor(options: LiveOptions) {
    this.opts = {
      socketFactory: (url) => new WebSocket(url) as unknown as SocketLike,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      random: Math.random,
      pingIntervalMs: 30_000,
      maxBackoffMs: 15_000,
      clock: () => Date.now(),
      ...options,
    };
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.opts.clearTimer(this.retryTimer);
    this.opts.clearTimer(this.pingTimer);
    this.socket?.close(1000, "bye");
    this.socket = null;
  }

  subscribe(channel: string, handler: ChannelHandler): () => void {
    this.handlers.set(channel, handler);
    if (this.state === "live") this.sendSubscribe(channel);
    return () => {
      this.handlers.delete(channel);
      this.positions.delete(channel);
      if (this.state === "live") this.send({ type: "unsubscribe", channel });
    };
  }

  sendPresence(channel: string, data: Record<string, unknown>): void {
    if (this.state === "live") this.send({ type: "presence", channel, data });
  }

  /** Ask who is on a presence channel (past `limit` entries: a sample and the counts); the answer reaches the
   * channel's handler as a presence message. */
  requestPresence(channel: string, limit?: number): void {
    if (this.state === "live") this.send(limit ? { type: "presence_list", channel, limit } : { type: "presence_list", channel });
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private open(): void {
    const socket = this.opts.socketFactory(this.opts.url);
    this.socket = socket;
    socket.onopen = () => {
      this.lastHeard = this.now();
      this.setState("live");
      for (const channel of this.handlers.keys()) this.sendSubscribe(channel);
      this.schedulePing();
    };
    socket.onmessage = (ev) => {
      // Only an answer proves the server serves us: a busy server accepts, then closes with 1013 "try again
      // later", and resetting the backoff on open would retry such a storm every quarter second forever.
      this.attempt = 0;
      this.lastHeard = this.now();
      if (typeof ev.data !== "string") return;
      for (const frame of splitFrames(ev.data)) this.receive(frame);
    };
    socket.onerror = () => undefined; // onclose follows and decides
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.opts.clearTimer(this.pingTimer);
      if (this.stopped) return;
      if (ev.code === 4401) {
        this.setState("signed-out");
        return;
      }
      if (FINAL_CODES.has(ev.code)) {
        this.setState("offline");
        return;
      }
      this.setState("reconnecting");
      const delay = backoffDelay(this.attempt++, this.opts.maxBackoffMs, this.opts.random);
      this.retryTimer = this.opts.setTimer(() => this.open(), delay);
    };
  }

  /** Reconnect now (e.g. the browser went back online) instead of waiting for the backoff. */
  retryNow(): void {
    if (this.socket !== null || this.stopped) return;
    this.opts.clearTimer(this.retryTimer);
    this.open();
  }

  /** The device lost its network: drop the socket (it may linger half-open) and wait for retryNow(). */
  pause(): void {
    this.opts.clearTimer(this.retryTimer);
    this.opts.clearTimer(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "offline");
    if (!this.stopped) this.setState("offline");
  }

  private schedulePing(): void {
    this.pingTimer = this.opts.setTimer(() => {
      // Nothing heard for two intervals (not even the last pong): the socket is half-open. Reconnect.
      if (this.now() - this.lastHeard > 2 * this.opts.pingIntervalMs) {
        const socket = this.socket;
        socket?.close(4000, "no answer");
        socket?.onclose?.({ code: 1006, reason: "no answer" });
        return;
      }
      this.send({ type: "ping" });
      this.schedulePing();
    }, this.opts.pingIntervalMs);
  }

  private now(): number {
    return this.opts.clock();
  }

  private send(frame: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify({ id: this.nextId++, ...frame }));
  }

  private sendSubscribe(channel: string): void {
    const since = this.positions.get(channel);
    this.send(since ? { type: "subscribe", channel, since } : { type: "subscribe", channel });
  }

  private receive(frame: Record<string, unknown>): void {
    const channel = frame.channel as string | undefined;
    const handler = channel ? this.handlers.get(channel) : undefined;
    switch (frame.type) {
      case "subscribed": {
        const position = frame.position as Position;
        const hadPosition = this.positions.has(channel!);
        if (frame.reload || (hadPosition && !frame.recovered)) handler?.({ kind: "reload" });
        if (!this.positions.has(channel!) || frame.reload) this.positions.set(channel!, position);
        handler?.({ kind: "subscribed" });
        break;
      }
      case "event": {
        const event = frame as unknown as LiveEvent;
        const last = this.positions.get(event.channel);
        if (last && last.epoch === event.epoch && event.offset <= last.offset) return; // already seen
        this.positions.set(event.channel, { offset: event.offset, epoch: event.epoch });
        handler?.({ kind: "event", event });
        break;
      }
      case "reload":
        this.positions.set(channel!, frame.position as Position);
        handler?.({ kind: "reload" });
        break;
      case "presence_diff":
      case "presence_list":
        handler?.({ kind: "presence", frame });
        break;
      case "unsubscribed":
        if (frame.reason) {
          this.handlers.delete(channel!);
          handler?.({ kind: "revoked" });
        }
        break;
      default:
        break;
    }
  }
}
