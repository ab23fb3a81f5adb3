// @hocuspocus/server on a port, no extensions (in memory): node hocuspocus.mjs PORT
import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2])
const server = new Server({ port, address: '127.0.0.1', quiet: true, debounce: 1e9 })
await server.listen()
console.log('listening')
