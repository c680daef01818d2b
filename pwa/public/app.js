// Interim staff console: sign in, see who you are and the households in your scope (masked).
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("access_token");

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw Object.assign(new Error(data?.detail || response.statusText), { data });
  return data;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  return td;
}

async function showSession() {
  const me = await api("GET", "/api/v1/auth/me");
  $("whoami").textContent = `${me.display_name}（${me.username}，${me.role}）`;
  $("login").hidden = true;
  $("session").hidden = false;
  const rows = $("households");
  rows.replaceChildren();
  try {
    const page = await api("GET", "/api/v1/households?limit=100");
    $("count").textContent = `${page.items.length} / ${page.total}`;
    for (const h of page.items) {
      const tr = document.createElement("tr");
      tr.append(cell(h.code), cell(h.head_name), cell(h.category), cell(h.grid_code), cell(h.phone_masked));
      rows.append(tr);
    }
  } catch (error) {
    $("count").textContent = error.message;
  }
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $("error").textContent = "";
  try {
    const tokens = await api("POST", "/api/v1/auth/login", {
      login: form.get("login"), password: form.get("password"), ...(form.get("otp") ? { otp: form.get("otp") } : {}),
    });
    token = tokens.access_token;
    sessionStorage.setItem("access_token", token);
    await showSession();
  } catch (error) {
    $("error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/api/v1/auth/logout").catch(() => {});
  token = null;
  sessionStorage.removeItem("access_token");
  $("session").hidden = true;
  $("login").hidden = false;
});

if (token) showSession().catch(() => { token = null; sessionStorage.removeItem("access_token"); });
