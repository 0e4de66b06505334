/**
 * Every transaction on a live document carries one of these origins, and fan-out and
 * persistence are decided from it: a device's update goes to the other devices; an update
 * read from the hub is delivered locally but never appended again; the server's own writes
 * (meta, signatures) go everywhere.
 */
export const SERVER_ORIGIN = Symbol('server');
export const HUB_ORIGIN = Symbol('hub');
export const LOAD_ORIGIN = Symbol('load');
