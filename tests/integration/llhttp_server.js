// A reference HTTP/1.1 server for the differential test: Node.js's own http server, whose parser
// is llhttp, with its default (strict) settings. Every request it parses is answered 200 with a
// JSON line naming what it saw: method, target and the length of the body it framed. A request
// it refuses is answered 400 with llhttp's error code, and the connection closes.
//
// Usage: node llhttp_server.js SOCKET_PATH   (prints "ready" on stdout once listening)
'use strict';
const http = require('http');
const fs = require('fs');

const path = process.argv[2];
try { fs.unlinkSync(path); } catch (e) { /* not there: nothing to replace */ }

function answer(req, res) {
  let length = 0;
  req.on('data', (chunk) => { length += chunk.length; });
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, target: req.url, body: length,
      version: req.httpVersion }) + '\n';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}
const server = http.createServer({ maxHeaderSize: 8192 }, answer);
// An Expect other than 100-continue: node would answer 417 itself; the parser accepted the
// request, and that is what is compared.
server.on('checkExpectation', answer);
// A parse error: say which one (node's default answer is a bare 400), then close.
server.on('clientError', (err, socket) => {
  // Bytes after a request that closes the connection (HTTP/1.0, "Connection: close"): the
  // answer to that request is still being written, and node closes once it is.
  if (err.code === 'HPE_CLOSED_CONNECTION') return;
  const body = JSON.stringify({ error: err.code || String(err) }) + '\n';
  if (socket.writable) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n' +
               `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroy();
});
// No tunnels and no protocol switches: a CONNECT or an upgrade request is refused, as a server
// without a handler for them does.
server.on('connect', (req, socket) => {
  const body = JSON.stringify({ error: 'CONNECT' }) + '\n';
  socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
});
server.keepAliveTimeout = 5000;
server.listen(path, () => { process.stdout.write('ready\n'); });
process.on('SIGTERM', () => { server.close(); process.exit(0); });
