// Reads one base64-encoded message per line on stdin; writes one JSON line per message:
// the header names mailparser found, in order, and the subject and from it decoded.
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
      const names = mail.headerLines.map((h) => h.key);
      process.stdout.write(JSON.stringify({ names, subject: mail.subject || "", from: mail.from ? mail.from.text : "" }) + "\n");
    } catch (error) {
      process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
    }
  }
  busy = false;
}

lines.on("line", (line) => { queue.push(line); drain(); });
