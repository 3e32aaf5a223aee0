// The test page's front end: what a club site would write with cyberhub-client, plus a few hooks
// (window.*) the browser test reads.
import { connect, verifyOpen } from "cyberhub-client";

const params = new URLSearchParams(location.search);
const hub = connect({ url: params.get("server"), getToken: () => params.get("token") });
const $ = (id) => document.getElementById(id);
window.hub = hub;

window.seenVersions = [];
hub.balance.subscribe((shown) => {
  if (!shown) return;
  window.seenVersions.push(shown.version);
  $("balance").textContent = (shown.cents / 100).toFixed(2);
});
hub.connection.subscribe((state) => {
  $("status").textContent = state.status;
});

/** Opens a case, rotates the seed pair to reveal its server seed, and verifies the open. */
window.openAndVerify = async (caseId) => {
  const opened = await hub.api.openCase(caseId);
  $("opened").textContent = opened.item.name;
  const rotation = await hub.api.rotateSeed();
  const proof = await verifyOpen(opened.fair, rotation.previous.serverSeed, { itemId: opened.item.id });
  $("proof").textContent = proof.verified ? "verified" : `FAILED: ${proof.problems.join("; ")}`;
  return { balanceVersion: opened.balanceVersion, balance: opened.balance, proof };
};
