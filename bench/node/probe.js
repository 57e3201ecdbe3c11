// An independent latency probe, to check what `chat-load` reports.
//
// `chat-load` shares the machine with the server, so its latency figures
// include its own queueing. This probe runs in another process and another
// stack (Node's `ws` client): one publisher sends a few stamped messages per
// second and a few receivers time their arrival. Run it beside a `chat-load`
// run; if the two disagree, the load tool is measuring itself.
//
//   node probe.js URL PROTOCOL(plain|json) SECONDS [RECEIVERS] [RATE] > probe.json
//
// Prints one JSON object: sent, expected, received, and latency percentiles in ms.
const WebSocket = require('ws');

const [url, protocol = 'plain', seconds = '10', receiverCount = '10', rate = '20'] = process.argv.slice(2);
const room = 'bench';
const tag = `probe${process.pid}`;
const latencies = [];
let sent = 0;

function open(index) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.on('error', reject);
    socket.on('open', () => {
      if (protocol !== 'json') return resolve(socket);
      const nick = `${tag}-${index}`;
      socket.send(JSON.stringify({ type: 'join', room, nick, tab: nick }));
      const onJoin = (data) => {
        const text = data.toString();
        if (text.startsWith('{"type":"history"')) {
          socket.off('message', onJoin);
          resolve(socket);
        } else if (text.startsWith('{"type":"error"')) {
          reject(new Error(text));
        }
      };
      socket.on('message', onJoin);
    });
  });
}

// The stamp is `<tag>:<seq>:<hrtime ns>:`, found in a plain frame or a JSON message's text.
function stampOf(text) {
  const at = text.indexOf(`${tag}:`);
  if (at < 0) return null;
  const parts = text.slice(at).split(':');
  return parts.length >= 3 ? BigInt(parts[2]) : null;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const receivers = await Promise.all([...Array(Number(receiverCount)).keys()].map((i) => open(i)));
  const publisher = await open(Number(receiverCount));
  for (const socket of receivers) {
    socket.on('message', (data) => {
      const stamp = stampOf(data.toString());
      if (stamp !== null) latencies.push(Number(process.hrtime.bigint() - stamp) / 1e6);
    });
  }
  const deadline = Date.now() + Number(seconds) * 1000;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() >= deadline) {
        clearInterval(timer);
        return resolve();
      }
      const text = `${tag}:${sent}:${process.hrtime.bigint()}:`.padEnd(64, 'x');
      const frame =
        protocol === 'json' ? JSON.stringify({ type: 'send', room, client_id: `${tag}-${sent}`, text }) : text;
      publisher.send(frame);
      sent += 1;
    }, 1000 / Number(rate));
  });
  // Let the last messages arrive.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const sorted = latencies.slice().sort((a, b) => a - b);
  const result = {
    sent,
    expected: sent * receivers.length,
    received: latencies.length,
    p50_ms: percentile(sorted, 50),
    p90_ms: percentile(sorted, 90),
    p99_ms: percentile(sorted, 99),
    max_ms: sorted.length ? sorted[sorted.length - 1] : 0,
  };
  console.log(JSON.stringify(result));
  for (const socket of [...receivers, publisher]) socket.terminate();
}

main().catch((error) => {
  console.error(`probe: ${error.message}`);
  process.exit(1);
});
