/**
 * An event's orders as CSV (RFC 4180), produced a page at a time from the store's keyset pages, so that
 * an export of any size holds one page in memory. It is a pull stream: the next page is read only when
 * the client has taken the previous one (Readable.from pulls the generator as the socket drains).
 */
import { Readable } from "node:stream";
import type { Order } from "../domain/sale.js";
import type { OrderFilter, OrderPage } from "../store/store.js";

export const CSV_COLUMNS = [
  "id",
  "eventId",
  "customerId",
  "quantity",
  "seats",
  "status",
  "createdAt",
  "cancelledAt",
  "items",
  "total",
  "currency",
  "paymentReference",
] as const;

/** Orders read per page of the export. */
export const CSV_PAGE_SIZE = 500;

/**
 * One cell: quoted when it holds a quote, comma, CR or LF (quotes doubled), and defused when a
 * spreadsheet would run it as a formula (it starts with = + - @, a tab or a CR): a leading ' makes it
 * text, the OWASP advice against CSV injection.
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return "";
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One line, CRLF-terminated as RFC 4180 says. */
export function csvLine(cells: readonly (string | number | null)[]): string {
  return `${cells.map(csvCell).join(",")}\r\n`;
}

export function orderCsvLine(order: Order): string {
  return csvLine([
    order.id,
    order.eventId,
    order.customerId,
    order.quantity,
    order.seats === null ? null : order.seats.join(" "),
    order.status,
    order.createdAt,
    order.cancelledAt,
    itemsCell(order),
    order.total,
    order.currency,
    order.paymentReference,
  ]);
}

/** The order's lines, space-separated, each `<ticket type or zone id>:<quantity>:<unit price>`. */
function itemsCell(order: Order): string {
  return order.lines.map((line) => `${line.id}:${line.quantity}:${line.unitPrice}`).join(" ");
}

/**
 * The CSV of `firstPage` and every page after it, read on demand through `readPage`. The first page is
 * read by the caller before anything is sent, so that a missing event is still a 404.
 */
export function ordersCsv(
  firstPage: OrderPage,
  readPage: (filter: OrderFilter, cursor: string) => Promise<OrderPage | null>,
  filter: OrderFilter,
): Readable {
  async function* lines(): AsyncGenerator<string> {
    yield csvLine(CSV_COLUMNS);
    let page: OrderPage | null = firstPage;
    while (page !== null) {
      // One chunk per page: fewer, larger writes than one per order.
      if (page.orders.length > 0) yield page.orders.map(orderCsvLine).join("");
      if (page.nextCursor === null) return;
      page = await readPage(filter, page.nextCursor);
    }
  }
  return Readable.from(lines(), { objectMode: false, highWaterMark: 64 * 1024 });
}
