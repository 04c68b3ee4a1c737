export { createChatServer } from "./http/chat-server.js";
export type { ChatServer } from "./http/chat-server.js";
export { resolveOptions, DEFAULTS } from "./config.js";
export type { ChatOptions, ResolvedOptions } from "./config.js";
export { Hub, DEFAULT_ROOM } from "./hub.js";
export type { HubOptions, PostInput, EndReason } from "./hub.js";
export type { ChatMessage, MessageType } from "./message.js";
export { ChatError, ERRORS } from "./errors.js";
export type { ErrorCode } from "./errors.js";
