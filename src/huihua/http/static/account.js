const $ = (id) => document.getElementById(id);
const say = (text) => { $("message").textContent = text || ""; };

async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw Object.assign(new Error(data?.error?.message || res.statusText), { status: res.status, code: data?.error?.code });
  return data;
}

function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

// linked identities: removing one asks for the password again (the server checks it, throttled)
let unlinking = null;
async function refreshIdentities() {
  const { identities } = await api("GET", "/v1/auth/identities");
  const tbody = $("identities"); tbody.replaceChildren();
  for (const i of identities) {
    const row = tbody.insertRow(); row.dataset.id = i.id;
    cell(row, i.provider === "wechat" ? "WeChat" : i.provider);
    cell(row, i.appid);
    cell(row, when(i.bound_at));
    cell(row, when(i.last_used_at));
    const b = document.createElement("button"); b.textContent = "Remove"; b.className = "unlink";
    b.onclick = () => { unlinking = i.id; $("unlink-what").textContent = "WeChat (" + i.appid + ")"; $("unlink-form").hidden = false; };
    row.insertCell().append(b);
  }
  $("identities-table").hidden = identities.length === 0;
  $("no-identities").hidden = identities.length !== 0;
}

async function refresh() {
  try {
    const me = await api("GET", "/v1/auth/me");
    const { sessions } = await api("GET", "/v1/sessions");
    $("who").textContent = me.user.username || me.user.id;
    const tbody = $("sessions"); tbody.replaceChildren();
    for (const s of sessions) {
      const row = tbody.insertRow(); row.dataset.id = s.id;
      cell(row, s.client + (s.current ? " (this one)" : ""), s.current ? "current" : "");
      cell(row, s.ip || "");
      cell(row, new Date(s.last_seen_at).toLocaleString());
      cell(row, new Date(s.expires_at).toLocaleString());
      const td = row.insertCell();
      if (!s.current) {
        const b = document.createElement("button"); b.textContent = "Revoke"; b.className = "revoke";
        b.onclick = async () => { await api("DELETE", "/v1/sessions/" + encodeURIComponent(s.id)); refresh(); };
        td.append(b);
      }
    }
    await refreshIdentities();
    $("signed-in").hidden = false; $("signed-out").hidden = true;
  } catch (e) {
    $("signed-in").hidden = true; $("signed-out").hidden = false;
    if (e.status !== 401) say(e.message);
  }
}

$("login-form").onsubmit = async (ev) => {
  ev.preventDefault(); say("");
  const f = new FormData(ev.target);
  try { await api("POST", "/v1/auth/login", { username: f.get("username"), password: f.get("password") }); ev.target.reset(); refresh(); }
  catch (e) { say(e.message); }
};
$("signup-form").onsubmit = async (ev) => {
  ev.preventDefault(); say("");
  const f = new FormData(ev.target);
  const creds = { username: f.get("username"), password: f.get("password") };
  try { await api("POST", "/v1/accounts", creds); await api("POST", "/v1/auth/login", creds); ev.target.reset(); refresh(); }
  catch (e) { say(e.message); }
};
$("logout").onclick = async () => { await api("POST", "/v1/auth/logout"); refresh(); };
$("logout-others").onclick = async () => { await api("POST", "/v1/auth/logout-all", { keep_current: true }); refresh(); };
$("unlink-form").onsubmit = async (ev) => {
  ev.preventDefault(); say("");
  const f = new FormData(ev.target);
  try {
    await api("DELETE", "/v1/auth/identities/" + encodeURIComponent(unlinking), { password: f.get("password") });
    ev.target.reset(); ev.target.hidden = true; unlinking = null; refresh();
  } catch (e) { say(e.message); }
};
$("unlink-cancel").onclick = () => { $("unlink-form").reset(); $("unlink-form").hidden = true; unlinking = null; };
refresh();
