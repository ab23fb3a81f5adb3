// A stock Yjs editor: `new WebsocketProvider(base, noteId, ydoc, ...)` from the y-websocket package, its sockets
// opened by the `ws` package with the token in an Authorization header (never in the URL: docs/PROTOCOL.md).
// Usage: node editor.mjs <ws base, e.g. ws://127.0.0.1:8000/yjs> <note id> <token> <name> <edits>
// Prints one JSON line per state change: {"synced", "text", "denied", "peers"}; exits when stdin closes.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [base, noteId, token, name, edits] = process.argv.slice(2)
const ydoc = new Y.Doc()
const text = ydoc.getText('content')
class AuthorizedWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { headers: { Authorization: `Bearer ${token}` } })
  }
}
const provider = new WebsocketProvider(base, noteId, ydoc, {
  WebSocketPolyfill: AuthorizedWebSocket,
  disableBc: true
})
let denied = null
let synced = false
provider.on('connection-close', (event) => { if (event && event.code === 4403) denied = event.code })
provider.awareness.setLocalStateField('user', { name, color: '#1f6feb' })

let last = ''
const report = () => {
  const line = JSON.stringify({
    synced,
    text: text.toString(),
    denied,
    peers: [...provider.awareness.getStates().values()].map((s) => s.user && s.user.name).filter(Boolean).sort()
  })
  if (line !== last) {
    last = line
    process.stdout.write(line + '\n')
  }
}
setInterval(report, 20)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

provider.once('sync', async (isSynced) => {
  synced = isSynced
  for (let i = 0; i < Number(edits); i++) {
    // Insert between tokens (never inside one), so every edit stays readable in the converged text.
    const current = text.toString()
    const boundaries = [0]
    for (let j = 0; j < current.length; j++) if (current[j] === ']') boundaries.push(j + 1)
    const at = boundaries[Math.floor(Math.random() * boundaries.length)]
    text.insert(at, `[${name}:${i}]`)
    if (i % 5 === 0) provider.awareness.setLocalStateField('cursor', { index: at })
    await sleep(Math.random() * 10)
  }
  report()
})

process.stdin.on('data', () => {})
process.stdin.on('end', () => {
  provider.destroy()
  process.exit(0)
})
