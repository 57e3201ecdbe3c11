// The seed's Node broadcast server (../shared/seed), with the port from the
// environment so the benchmark can run it beside ours. Every message goes to
// every open client, the sender included.
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(process.env.PORT || 8090) });
wss.on('connection', function connection(ws) {
  ws.on('message', function incoming(message) {
    wss.clients.forEach(function each(client) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(message);
      }
    });
  });
});
wss.on('listening', () => console.log(`listening on ${wss.address().port}`));
