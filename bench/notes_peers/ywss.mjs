// @y/websocket-server 0.1.1 on a port: node ywss.mjs PORT
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const port = Number(process.argv[2])
const server = http.createServer((req, res) => { res.writeHead(200); res.end('ok') })
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(port, '127.0.0.1', () => console.log('listening'))
