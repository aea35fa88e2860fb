// Shared by the chat's browser tests: sign up `name` on the chat at `base` in `page` and wait
// until the page shows the app, connected (`timeout`: playwright's options, e.g. { timeout: 15000 }).
export async function register(page, base, name, timeout) {
  await page.goto(base);
  await page.fill("#username", name);
  await page.fill("#password", "hunter2hunter2");
  await page.click("#register");
  await page.waitForSelector("#app:not([hidden])", timeout);
  await page.waitForFunction(() => document.getElementById("conn").textContent === "connected", null, timeout);
}
