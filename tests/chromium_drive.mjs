// Drive posecli's HTML viewer in headless Chromium over the DevTools protocol, as a person
// would: watch it play, pause with the space bar, scrub the timeline, change the speed, drag to
// orbit, wheel to zoom. Prints what it saw as JSON.
//   node --experimental-websocket tests/chromium_drive.mjs CHROMIUM PROFILE_DIR FILE_URL
import { spawn } from "node:child_process";

const [exe, profile, url] = process.argv.slice(2);
const browser = spawn(exe, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", `--user-data-dir=${profile}`,
  "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=900,600",
  "--remote-debugging-port=0", url], { stdio: ["ignore", "ignore", "pipe"] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  const port = await new Promise((resolve, reject) => {
    let text = "";
    browser.stderr.on("data", (d) => {
      text += d;
      const m = text.match(/DevTools listening on ws:\/\/[^:]+:(\d+)\//);
      if (m) resolve(m[1]);
    });
    browser.on("exit", () => reject(new Error("chromium exited: " + text.slice(-500))));
  });
  let page;
  for (let k = 0; k < 50 && !page; k++) {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    page = list.find((t) => t.type === "page" && t.url.startsWith("file:"));
    if (!page) await sleep(100);
  }
  const ws = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener("open", r, { once: true }));
  let id = 0;
  const waiting = new Map();
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id && waiting.has(msg.id)) { waiting.get(msg.id)(msg); waiting.delete(msg.id); }
  });
  const send = (method, params = {}) => new Promise((r) => {
    waiting.set(++id, r); ws.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expr) => (await send("Runtime.evaluate", { expression: expr, returnByValue: true })).result.result.value;
  // "" until the page has loaded its counter
  const counter = async () => (await evaluate("(document.getElementById('counter') || {}).textContent")) || "";
  const seconds = async () => Number((await counter()).match(/([\d.]+) s/)[1]);
  const key = async (k, code, keyCode) => {
    await send("Input.dispatchKeyEvent", { type: "keyDown", key: k, code, windowsVirtualKeyCode: keyCode });
    await send("Input.dispatchKeyEvent", { type: "keyUp", key: k, code, windowsVirtualKeyCode: keyCode });
  };
  const shot = async () => (await send("Page.captureScreenshot", { format: "png" })).result.data;
  const out = {};
  for (let k = 0; k < 100 && !(await counter()).startsWith("frame"); k++) await sleep(100);
  out.start = await counter();
  await sleep(1200);
  out.playing = await counter();
  await key(" ", "Space", 32);                       // pause
  out.paused1 = await counter();
  await sleep(600);
  out.paused2 = await counter();
  await evaluate("(() => { const s = document.getElementById('scrub'); s.value = 100; s.dispatchEvent(new Event('input')); })()");
  out.scrubbed = await counter();
  await key("ArrowRight", "ArrowRight", 39);
  out.stepped = await counter();
  for (const speed of ["2", "0.25"]) {                 // from 0 s, play for 0.8 s of wall time
    await evaluate(`(() => { const s = document.getElementById('speed'); s.value = '${speed}'; s.dispatchEvent(new Event('change'));
      const r = document.getElementById('scrub'); r.value = 1; r.dispatchEvent(new Event('input')); })()`);
    const t0 = Date.now();
    await key(" ", "Space", 32);
    await sleep(800);
    await key(" ", "Space", 32);
    out[`speed${speed}`] = { media: await seconds(), wall: (Date.now() - t0) / 1000 };
  }
  const before = await shot();
  await send("Input.dispatchMouseEvent", { type: "mousePressed", x: 450, y: 300, button: "left", clickCount: 1 });
  await send("Input.dispatchMouseEvent", { type: "mouseMoved", x: 560, y: 330, button: "left", buttons: 1 });
  await send("Input.dispatchMouseEvent", { type: "mouseReleased", x: 560, y: 330, button: "left", clickCount: 1 });
  await sleep(200);
  const orbited = await shot();
  await send("Input.dispatchMouseEvent", { type: "mouseWheel", x: 450, y: 300, deltaX: 0, deltaY: 400 });
  await sleep(200);
  const zoomed = await shot();
  out.orbitChanged = before !== orbited;
  out.zoomChanged = orbited !== zoomed;
  out.error = await evaluate("document.getElementById('error').textContent");
  process.stdout.write(JSON.stringify(out));
  ws.close();
} finally {
  browser.kill();
}
