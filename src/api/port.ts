// The API's default port, in a file of its own so `weir status` and `weir goal` can name it
// without loading the HTTP server (@hono/node-server) into every command.
export const DEFAULT_API_PORT = 9470;
