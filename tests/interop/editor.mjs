// A stock Yjs editor: `new WebsocketProvider(base, noteId, ydoc, ...)` from the y-websocket package, its sockets
// opened by the `ws` package with the token in an Authorization header (never in the URL: docs/PROTOCOL.md),
// editing the note's document model as the web editor (Tiptap / y-prosemirror) does: the Y.XmlFragment
// "prosemirror", one <paragraph> Y.XmlElement per edit, its text a Y.XmlText (every fifth one bold, as a mark).
// Usage: node editor.mjs <ws base, e.g. ws://127.0.0.1:8000/yjs> <note id> <token> <name> <edits>
// Prints one JSON line per state change: {"synced", "text", "blocks", "denied", "peers"}; exits when stdin closes.
// `text` is the note as plain text the way the server's text export renders it: blocks' text, a blank line between.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [base, noteId, token, name, edits] = process.argv.slice(2)
const ydoc = new Y.Doc()
const fragment = ydoc.getXmlFragment('prosemirror')
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

const textOf = (node) => {
  if (node instanceof Y.XmlText) return node.toDelta().map((d) => (typeof d.insert === 'string' ? d.insert : '')).join('')
  if (node.nodeName === 'hardBreak') return '\n'
  return node.toArray().map(textOf).join('')
}

let last = ''
const report = () => {
  const blocks = fragment.toArray().map((el) => ({ tag: el.nodeName, text: textOf(el) }))
  const line = JSON.stringify({
    synced,
    text: blocks.map((b) => b.text).join('\n\n'),
    blocks,
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
    // A new paragraph between the others (never inside one), so every edit stays readable in the converged note.
    const at = Math.floor(Math.random() * (fragment.length + 1))
    ydoc.transact(() => {
      const paragraph = new Y.XmlElement('paragraph')
      fragment.insert(at, [paragraph])
      const text = new Y.XmlText()
      paragraph.insert(0, [text])
      text.insert(0, `[${name}:${i}]`, i % 5 === 0 ? { bold: {} } : {})
    })
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
