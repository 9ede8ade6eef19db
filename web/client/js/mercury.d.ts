// Type declarations of mercury.js.

/** A connection's state, or the client's: reconnecting when one of its connections is. */
export type State = "connecting" | "open" | "reconnecting" | "closed";

/** A message: data is the parsed JSON, a string for other text, bytes for binary. */
export interface Message<T = unknown> {
  topic: string;
  seq: number;
  /** The life of the broker's sequence numbers seq belongs to. */
  epoch?: string;
  /** RFC 3339 with nanoseconds. */
  time: string;
  data: T;
  /** How the broker carried data: JSON (parsed), text (a string) or base64 (bytes). Tells a JSON string from text. */
  encoding: "json" | "text" | "base64";
}

/** A pulled job: id stays the same across redeliveries; attempt counts them. */
export interface Job<T = unknown> extends Message<T> {
  id: number;
  attempt: number;
}

/** Messages from..to are no longer kept; with reset, the broker started a new epoch. */
export interface Gap {
  from: number;
  to: number;
  reset?: boolean;
  epoch?: string;
}

/** Strings are sent as they are, bytes as a binary frame, anything else as JSON. */
export type Data = string | ArrayBuffer | ArrayBufferView | unknown;

export interface Options {
  /** A JWT or API key, sent at the handshake (subprotocol mercury.token.…, or Authorization for SSE). */
  token?: string;
  /** Called for a first token, before a JWT expires (refreshed in-band), and after a 4401 close. */
  getToken?: () => Promise<string> | string;
  onState?: (state: State) => void;
  /** Errors no promise reports: a refused token, a closed worker, a refused subscription (unless its handle has its own onError). */
  onError?: (err: Error) => void;
  /** Reconnection delays in ms, doubled per failure, with jitter (default 250 to 30000). */
  backoff?: { initial?: number; max?: number };
  /** A WebSocket constructor where there is no global one. */
  WebSocket?: unknown;
}

export interface Handle {
  readonly state: State;
  close(): void;
}

export interface SubscribeOptions<T = unknown> {
  /** Replay what came after this position: a sequence number or "EPOCH:SEQ". */
  since?: number | string;
  epoch?: string;
  onMessage?: (msg: Message<T>) => void;
  onGap?: (gap: Gap) => void;
  onState?: (state: State) => void;
  /** This subscription's errors (an error frame, a refusal that closes it), instead of the client's onError. */
  onError?: (err: Error) => void;
  /** "auto" (default): WebSocket, Server-Sent Events when it is refused. */
  transport?: "auto" | "websocket" | "sse";
  /** Watch joins and leaves at or below the topic (?presence=1); implied by onPresence. A watcher gets no requests. */
  presence?: boolean;
  /** A join or leave: never delivered to onMessage. */
  onPresence?: (ev: PresenceEvent) => void;
  /** Answers a request (POST /req) on this subscription's socket; throwing answers {"error": message}. */
  onRequest?: (data: T, req: IncomingRequest) => unknown | Promise<unknown>;
}

/** A subscription at or below the topic asked about. */
export interface PresenceEntry {
  topic: string;
  /** The credential's subject or API key's name; null when anonymous. */
  user: string | null;
  since: string;
  /** The broker it is connected to (a cluster only). */
  node?: string;
  /** With the admin right only. */
  remote?: string;
  conn?: number;
}

export interface PresenceEvent extends PresenceEntry {
  event: "join" | "leave";
}

/** A request received by a responder. */
export interface IncomingRequest {
  id: string;
  topic: string;
  time: string;
}

export interface RequestOptions {
  /** ms, or a duration such as "5s"; the broker's default is 10 s, at most 60 s. */
  timeout?: number | string;
  /** Gather every answer until the timeout, or until every responder answered. */
  all?: boolean;
}

/** One answer of a request with all. */
export interface Answer<T = unknown> {
  user: string | null;
  topic: string;
  data: T;
}

export interface Subscription extends Handle {
  /** Where the subscription would resume: "EPOCH:SEQ", or null before its first message. */
  readonly position: string | null;
}

export interface BusOptions<T = unknown> {
  /** Also receive what this peer sends (default false). */
  echo?: boolean;
  onMessage?: (msg: Message<T>) => void;
  onState?: (state: State) => void;
  /** This peer's errors, instead of the client's onError. */
  onError?: (err: Error) => void;
}

export interface Bus extends Handle {
  /** Resolves with the message's sequence number once the broker accepted it. */
  send(data: Data): Promise<number>;
}

export interface PullOptions {
  /** Jobs held at once (default 16). */
  prefetch?: number;
  /** Delay before a nacked job comes back: ms or a duration such as "10s". An error's own delay wins. */
  nackDelay?: number | string;
  ttl?: string;
  exclusive?: boolean;
  takeover?: boolean;
  mustExist?: boolean;
  onState?: (state: State) => void;
  /** This worker's errors (a 4404 or 4409 close, say), instead of the client's onError. */
  onError?: (err: Error) => void;
}

export interface Client {
  readonly state: State;
  subscribe<T = unknown>(topic: string, options?: SubscribeOptions<T>): Subscription;
  /** Resolves with the sequence number once confirmed; rejects with a MercuryError. */
  publish(topic: string, data: Data): Promise<number>;
  push(topic: string, data: Data): Promise<number>;
  /** One message by HTTP POST: resolves with its sequence number, rejects at once with the broker's error and HTTP status (a WebSocket refused at its handshake is retried instead). */
  post(pattern: "pub" | "push" | "bus", topic: string, data: Data): Promise<number>;
  bus<T = unknown>(topic: string, options?: BusOptions<T>): Bus;
  /** The handler resolving acks the job; throwing nacks it with the error's message. */
  pull<T = unknown>(topic: string, handler: (job: Job<T>) => Promise<void> | void, options?: PullOptions): Handle;
  /** The first answer's data (JSON parsed, text as a string, binary as bytes); rejects with a MercuryError (no_responders, timeout, …). */
  request<T = unknown>(topic: string, data: Data, options?: RequestOptions & { all?: false }): Promise<T>;
  request<T = unknown>(topic: string, data: Data, options: RequestOptions & { all: true }): Promise<Answer<T>[]>;
  /** The subscriptions at or below topic. */
  presence(topic: string): Promise<PresenceEntry[]>;
  /** Calls getToken now (after a login or logout) and uses its token from then on: in-band on open connections, at the handshake of new ones; connections waiting to reconnect try at once. */
  refreshToken(): Promise<string>;
  close(): void;
}

/** The broker's refusal, {"error":{code,topic,message,…}}. */
export class MercuryError extends Error {
  code: string;
  topic?: string;
  action?: string;
  status?: number;
  detail: Record<string, unknown>;
}

export function connect(url: string, options?: Options): Client;
