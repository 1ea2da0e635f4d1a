// Reads one base64-encoded message per line on stdin; writes one JSON line per message: the
// subject and the From name and address as mailparser decodes them (tests/test_compose.py).
const { simpleParser } = require("mailparser");
const readline = require("readline");

const lines = readline.createInterface({ input: process.stdin });
const queue = [];
let busy = false;

async function drain() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const raw = Buffer.from(queue.shift(), "base64");
    try {
      const mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
      const from = mail.from && mail.from.value.length === 1 ? mail.from.value[0] : { name: null, address: null };
      process.stdout.write(JSON.stringify({ subject: mail.subject, fromName: from.name, fromAddress: from.address }) + "\n");
    } catch (error) {
      process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
    }
  }
  busy = false;
}

lines.on("line", (line) => { queue.push(line); drain(); });
