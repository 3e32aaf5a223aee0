// cyberhub-client: the typed web client of CyberHub.
export { connect, CyberHubClient } from "./realtime.js";
export type { Balance, ClientEvents, ConnectOptions } from "./realtime.js";
export type { ConnectionEvents, ConnectionOptions, ConnectionState, ConnectionStatus, SessionEndReason } from "./connection.js";
export { AdminApi, AdminClient, connectAdmin, createAdminApi } from "./admin.js";
export type * from "./admin.js";
export { ApiError, createApi, CyberHubApi, isApiError } from "./http.js";
export type * from "./http.js";
export { verifyOpen, verifyRoll } from "./fair.js";
export type { OpenProof, RollCheck, RollInput } from "./fair.js";
export { Store } from "./store.js";
export type { Readable } from "./store.js";
export { readClaims } from "./token.js";
export type { components, operations, paths } from "./api.gen.js";
