/**
 * The route table of the v1 API (docs/api.md) for one instance: every route, one file per resource in
 * routes/. Request shape is checked by the routes' schemas and ids; every inventory rule is the store's,
 * inside `execute()`, and the routes map its Outcomes to HTTP.
 */
import type { LockProvider } from "../lock/lock-provider.js";
import type { SellPath } from "../sales/sell-path.js";
import type { Store } from "../store/store.js";
import type { BuyerIdentity } from "./hooks/buyer-identity.js";
import type { OrderAccess } from "./order-access.js";
import type { PassSigner } from "../waiting-room/pass-signer.js";
import type { RoomDirectory } from "../waiting-room/room-directory.js";
import { accessTokenCheck } from "./hooks/access-token-check.js";
import type { RouteSpec } from "./route-spec.js";
import { eventRoutes, type SeesDrafts } from "./routes/events.js";
import { holdRoutes } from "./routes/holds.js";
import { operationRoutes } from "./routes/operations.js";
import { orderRoutes } from "./routes/orders.js";
import { webhookRoutes } from "./routes/webhooks.js";
import type { CollectionLog } from "../waiting-room/collection-log.js";
import { waitingRoomRoutes } from "./routes/waiting-room.js";
import { SellGate } from "./sell-gate.js";
import type { ServerMetrics } from "./server-metrics.js";

export interface ApiDeps {
  store: Store;
  lock: LockProvider;
  sellPath: SellPath;
  metrics: ServerMetrics;
  /** Longest a /ready probe waits for the store or the lock. */
  readyTimeoutMs: number;
  /** Who is calling a buyer route (--buyer-auth). */
  identity: BuyerIdentity;
  /** Who may act on an order or a hold. */
  access: OrderAccess;
  /** The waiting room's signer of passes and its per-instance cache of which events have a room. */
  waitingRoom: {
    signer: PassSigner;
    directory: RoomDirectory;
    collections: CollectionLog;
    /** One admission pass now (the instance's AdmissionTicker), for joins within the look-ahead. */
    admitNow?: () => Promise<void>;
  };
  /** Whether a request carries the admin token (drafts are shown only then). */
  isAdmin: SeesDrafts;
}

export function apiRoutes(deps: ApiDeps): RouteSpec[] {
  const gate = new SellGate(deps.sellPath, deps.metrics, deps.access, deps.identity.verifiesBuyers);
  const events = eventRoutes(deps.store, deps.isAdmin);
  const roomPass = accessTokenCheck({
    waitingRoom: deps.store.waitingRoom,
    directory: deps.waitingRoom.directory,
    signer: deps.waitingRoom.signer,
  });
  const orders = orderRoutes(deps.store, gate, deps.access, roomPass);
  const holds = holdRoutes(deps.store, gate, deps.access, roomPass);
  const rooms = waitingRoomRoutes({ store: deps.store, ...deps.waitingRoom });
  const operations = operationRoutes(deps);
  const webhooks = webhookRoutes(deps.store);
  // The order /openapi.json lists its paths in; it is published, so a new route is added, never moved.
  return [
    events.createEvent,
    events.listEvents,
    events.getEvent,
    events.getSeatMap,
    orders.createOrder,
    holds.createHold,
    holds.getHold,
    holds.confirmHold,
    holds.releaseHold,
    orders.getOrder,
    orders.cancelOrder,
    operations.health,
    operations.ready,
    operations.metrics,
    events.publishEvent,
    events.pauseEvent,
    events.resumeEvent,
    events.closeEvent,
    events.updateEvent,
    events.getReport,
    holds.extendHold,
    orders.listOrders,
    orders.exportOrders,
    webhooks.createEndpoint,
    webhooks.listEndpoints,
    webhooks.listDeliveries,
    webhooks.getDelivery,
    webhooks.replayDelivery,
    webhooks.getEndpoint,
    webhooks.deleteEndpoint,
    rooms.putRoom,
    rooms.getRoom,
    rooms.deleteRoom,
    rooms.joinQueue,
    rooms.getQueuePlace,
    rooms.leaveQueue,
  ];
}
