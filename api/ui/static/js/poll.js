// Live views of work in progress (replication executions, GC runs): loaded again every 2 s while
// something runs, until the page goes.
import { errorBox, mount } from "./dom.js";

export const POLL_MS = 2000;

// load() fetches; draw(answer) draws it and says (or resolves to) whether something still runs.
// poller.schedule(running) arms the next turn (the page calls it after its first draw);
// poller.now() loads at once (a refresh button, after a change). A failure shows in `problem`
// and polling goes on, unless its status is one of stopOn. Nothing is drawn once the page has
// gone (ctx.onLeave), and turns never overlap.
export function livePoller(ctx, { load, draw, problem, stopOn = [401, 403, 404] }) {
  let timer = null, gone = false, busy = false;
  ctx.onLeave(() => { gone = true; clearTimeout(timer); });
  const turn = async () => {
    try {
      const answer = await load();
      if (gone) return false;
      mount(problem);
      return await draw(answer);
    } catch (error) {
      if (!gone) mount(problem, errorBox(error));
      return !stopOn.includes(error.status);
    }
  };
  const poller = {
    schedule(running) {
      clearTimeout(timer);
      timer = running && !gone ? setTimeout(poller.now, POLL_MS) : null;
    },
    async now() {
      clearTimeout(timer);
      if (gone || busy) return;
      busy = true;
      let again = false;
      try {
        again = await turn();
      } finally {
        busy = false;
      }
      poller.schedule(again);
    },
  };
  return poller;
}
