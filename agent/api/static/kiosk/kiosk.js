// The officer kiosk at the dock (docs/kiosk.md): every slot, its officer, progress and
// state, "可以取走 / Safe to take" when the station says so, and tagging a session with a
// case number checked against the agency's rule as it is typed. Plain script, no build.
"use strict";

(() => {
  const TEXT = {
    "zh-CN": {
      title: "执法记录仪采集站",
      switch_to: "English",
      connecting: "正在连接…",
      live: "实时更新",
      polling: "每秒刷新",
      offline: "连接中断，正在重试…",
      no_slots: "暂无采集槽位",
      slot: "槽位",
      empty_slot: "空闲",
      officer_unknown: "民警未知",
      files: "个文件",
      safe: "可以取走",
      tag: "关联案件",
      tagged: "已关联：",
      phase_copying: "正在复制",
      phase_verified: "已校验，等待上传",
      phase_delivered: "已上传中心",
      phase_safe: "证据已安全",
      phase_wiped: "已清除记录仪",
      phase_removed: "已取走",
      phase_incomplete: "未完成",
      phase_closed: "已完成",
      tag_title: "关联案件：{who}",
      case_label: "案件编号（按法律文书填写）",
      proof_label: "证明对象（可不填）",
      check_empty: "请输入案件编号，例如 {example}",
      check_good: "格式正确：{number}",
      check_bad: "格式不符：应为 {pattern}，例如 {example}",
      check_long: "案件编号过长（最多 {max} 个字符）",
      check_control: "案件编号含有控制字符，请重新输入",
      refused: "已拒绝：{why}",
      saved: "已关联到案件 {number}",
      already: "此前已关联到案件 {number}",
      no_link_route: "本站尚不能从此处关联案件：编号已核对，请在办案系统中关联",
      save: "关联",
      close: "关闭",
      keyboard: "键盘",
      clear: "清空",
      setup_title: "设置自助终端",
      setup_help: "请运维人员输入本终端的令牌（evidock token create --role clerk --owner kiosk-1）。令牌保存在本浏览器中。",
      setup_save: "保存",
      setup_bad: "令牌无效或无权限：{why}",
    },
    en: {
      title: "Evidence docking station",
      switch_to: "中文",
      connecting: "Connecting…",
      live: "Live",
      polling: "Refreshing every second",
      offline: "Connection lost, retrying…",
      no_slots: "No slots yet",
      slot: "Slot",
      empty_slot: "Free",
      officer_unknown: "Officer unknown",
      files: "files",
      safe: "Safe to take",
      tag: "Tag case",
      tagged: "Tagged: ",
      phase_copying: "Copying",
      phase_verified: "Verified, waiting for upload",
      phase_delivered: "Delivered centrally",
      phase_safe: "Footage is safe",
      phase_wiped: "Recorder wiped",
      phase_removed: "Taken",
      phase_incomplete: "Incomplete",
      phase_closed: "Done",
      tag_title: "Tag a case: {who}",
      case_label: "Case number (as on the case's documents)",
      proof_label: "Object of proof (optional)",
      check_empty: "Type the case number, e.g. {example}",
      check_good: "Well-formed: {number}",
      check_bad: "Not well-formed: expected {pattern}, e.g. {example}",
      check_long: "The case number is too long (at most {max} characters)",
      check_control: "The case number holds control characters: type it again",
      refused: "Refused: {why}",
      saved: "Tagged with case {number}",
      already: "Was already tagged with case {number}",
      no_link_route: "This station cannot tag from here yet: the number is checked; tag it in the case system",
      save: "Tag",
      close: "Close",
      keyboard: "Keyboard",
      clear: "Clear",
      setup_title: "Set up this kiosk",
      setup_help: "IT: enter this kiosk's token (evidock token create --role clerk --owner kiosk-1). It is kept in this browser.",
      setup_save: "Save",
      setup_bad: "The token is not valid or may not do this: {why}",
    },
  };
  const TOKEN_KEY = "evidock.kiosk.token";
  const IDLE_MS = 120000; // the next officer finds the station's own language again
  const POLL_MS = 1000;
  const MAX_CASE_NUMBER = 128;
  const PART_NAMES = { agency: ["机关代字", "agency"], doctype: ["文书类别", "type"],
    year: ["年份", "year"], seq: ["序号", "number"] };

  const home = document.documentElement.lang === "en" ? "en" : "zh-CN";
  const state = {
    lang: home,
    token: "",
    slots: [], // slot names the station knows (GET /sessions)
    sessions: new Map(), // session_id -> session
    tags: new Map(), // session_id -> case number tagged here
    rule: null,
    regex: null,
    tagging: null, // the session being tagged
    canLink: true,
    idle: null,
  };
  const $ = (id) => document.getElementById(id);

  function t(key, values) {
    let text = (TEXT[state.lang] || TEXT["zh-CN"])[key] || TEXT.en[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split(`{${name}}`).join(String(value));
    }
    return text;
  }

  // --- case numbers: the station's folding (config/case_numbers.py), then its rule ------

  const OPEN = "([〔【〖〘｟⦅";
  const CLOSE = ")]〕】〗〙｠⦆";
  const esc = (s) => s.replace(/[\\\]\[\-^]/g, "\\$&");
  const BRACKETS = new RegExp(
    `[${esc(OPEN)}]([0-9]{4})[${esc(CLOSE)}]|([${esc(OPEN)}])|[${esc(CLOSE)}]`, "gu");

  function fold(text) {
    const folded = Array.from(text.normalize("NFKC").trim())
      .filter((ch) => !/\p{Zs}/u.test(ch)).join("");
    return folded.replace(BRACKETS, (m, year, open) =>
      year !== undefined ? `〔${year}〕` : open !== undefined ? "(" : ")");
  }

  function checkNumber(typed) {
    const number = fold(typed);
    const example = state.rule ? state.rule.example : "";
    if (!number) return { ok: false, number, why: t("check_empty", { example }) };
    if (Array.from(number).length > MAX_CASE_NUMBER) {
      return { ok: false, number, why: t("check_long", { max: MAX_CASE_NUMBER }) };
    }
    if (/\p{C}/u.test(number)) return { ok: false, number, why: t("check_control") };
    if (state.regex && !state.regex.test(number)) {
      return { ok: false, number, why: t("check_bad", { pattern: shownPattern(), example }) };
    }
    return { ok: true, number, why: t("check_good", { number }) };
  }

  function shownPattern() {
    const rule = state.rule;
    if (!rule) return "";
    const index = state.lang === "en" ? 1 : 0;
    return rule.pattern.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name) =>
      PART_NAMES[name] ? `〈${PART_NAMES[name][index]}〉` : `〈${name}〉`);
  }

  // --- talking to the station -----------------------------------------------------------

  async function api(path, options) {
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ Authorization: `Bearer ${state.token}` }, init.headers || {});
    const answer = await fetch(path, init);
    let body = null;
    try {
      body = await answer.json();
    } catch (e) {
      body = null;
    }
    if (!answer.ok) {
      const error = (body && body.error) || {};
      const failure = new Error(error.message || `HTTP ${answer.status}`);
      failure.status = answer.status;
      failure.code = error.code || "";
      throw failure;
    }
    return body;
  }

  function takeSessions(body) {
    state.slots = body.slots.map((s) => String(s.slot));
    state.sessions = new Map(body.sessions.map((s) => [s.session_id, s]));
    render();
  }

  async function refresh() {
    takeSessions(await api("/api/v1/sessions?limit=200"));
  }

  // Server-Sent Events read through fetch: EventSource cannot send the token's header,
  // and a token in a URL ends up in logs and history.
  async function follow() {
    const answer = await fetch("/api/v1/sessions/events", {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      cache: "no-store",
    });
    if (!answer.ok || !answer.body) throw new Error(`HTTP ${answer.status}`);
    setLive("live");
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (kind === "session" && data.length) {
          const session = JSON.parse(data.join("\n"));
          state.sessions.set(session.session_id, session);
          if (session.slot != null && !state.slots.includes(String(session.slot))) {
            state.slots.push(String(session.slot));
          }
          render();
        }
      }
    }
  }

  async function watch() {
    for (;;) {
      try {
        await refresh();
        await follow();
      } catch (e) {
        if (e.status === 401 || e.status === 403) return askToken(e.message);
      }
      // The stream ended or never came: poll every second until it comes back.
      setLive("polling");
      for (let i = 0; i < 5; i += 1) {
        try {
          await refresh();
          setLive("polling");
        } catch (e) {
          if (e.status === 401 || e.status === 403) return askToken(e.message);
          setLive("offline");
        }
        await new Promise((done) => setTimeout(done, POLL_MS));
      }
    }
  }

  function setLive(key) {
    $("live").dataset.t = key;
    $("live").textContent = t(key);
  }

  // --- the slots ------------------------------------------------------------------------

  function newestPerSlot() {
    const bySlot = new Map(state.slots.map((name) => [name, null]));
    const loose = [];
    for (const s of state.sessions.values()) {
      if (s.slot == null) {
        if (s.state === "open") loose.push(s);
        continue;
      }
      const name = String(s.slot);
      const known = bySlot.get(name);
      if (!known || `${s.opened_at}${s.session_id}` > `${known.opened_at}${known.session_id}`) {
        bySlot.set(name, s);
      }
    }
    const shown = [];
    for (const [name, s] of bySlot) shown.push({ name, session: s && s.phase !== "removed" ? s : null });
    for (const s of loose) shown.push({ name: "", session: s });
    return shown;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fraction(s) {
    if (s.phase !== "copying" && s.phase !== "incomplete") return 1;
    if (s.bytes_total) return Math.min(s.bytes_done / s.bytes_total, 1);
    return s.files ? Math.min(s.files_done / s.files, 1) : 0;
  }

  function size(bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  function card(name, s) {
    const node = el("section", "slot");
    const head = el("div", "slot-head");
    head.append(el("span", "slot-no", name ? `${t("slot")} ${name}` : "—"));
    node.append(head);
    if (!s) {
      node.classList.add("empty-slot");
      node.append(el("div", "state", t("empty_slot")));
      return node;
    }
    node.dataset.session = s.session_id;
    node.dataset.phase = s.phase;
    head.append(el("span", "recorder", s.recorder || ""));
    node.append(el("div", "officer", s.officer_name || s.officer || t("officer_unknown")));
    const bar = el("div", "bar");
    const fill = el("div");
    const share = fraction(s);
    fill.style.width = `${Math.round(share * 100)}%`;
    bar.append(fill);
    node.append(bar);
    let progress = `${s.files_done}/${s.files} ${t("files")}`;
    if (s.bytes_total) {
      progress += s.phase === "copying"
        ? ` · ${size(s.bytes_done)} / ${size(s.bytes_total)}` : ` · ${size(s.bytes_total)}`;
    }
    node.append(el("div", "progress", progress));
    node.append(el("div", "state", t(`phase_${s.phase}`)));
    if (s.phase === "incomplete") node.classList.add("incomplete");
    if (s.safe_to_take) {
      node.classList.add("safe");
      node.append(el("div", "safe-mark", t("safe")));
    }
    const tagged = state.tags.get(s.session_id);
    if (tagged) node.append(el("div", "tagged", `${t("tagged")}${tagged}`));
    const button = el("button", "tag-button", t("tag"));
    button.type = "button";
    button.addEventListener("click", () => openTag(s));
    node.append(button);
    return node;
  }

  function render() {
    const shown = newestPerSlot();
    $("slots").replaceChildren(...shown.map((x) => card(x.name, x.session)));
    $("empty").hidden = shown.length > 0;
  }

  function translate() {
    document.documentElement.lang = state.lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("lang").textContent = t("switch_to");
    buildKeyboard();
    if (state.tagging) {
      $("tag-title").textContent = t("tag_title", { who: who(state.tagging) });
      showCheck();
    }
    render();
  }

  function who(s) {
    return [s.slot != null ? `${t("slot")} ${s.slot}` : "", s.officer_name || s.officer || ""]
      .filter(Boolean).join(" · ");
  }

  // --- tagging --------------------------------------------------------------------------

  function buildKeyboard() {
    const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "〔", "〕"];
    const chars = (state.rule && state.rule.keys) || [];
    const board = $("keyboard");
    board.replaceChildren();
    for (const key of [...keys, ...chars, "(", ")", "号"]) {
      const button = el("button", "key", key);
      button.type = "button";
      button.addEventListener("click", () => typeKey(key));
      board.append(button);
    }
    const back = el("button", "key wide", "⌫");
    back.type = "button";
    back.dataset.key = "backspace";
    back.addEventListener("click", () => typeKey("\b"));
    const clear = el("button", "key wide", t("clear"));
    clear.type = "button";
    clear.addEventListener("click", () => { $("case").value = ""; showCheck(); });
    const typing = el("button", "key wide", t("keyboard"));
    typing.type = "button";
    typing.addEventListener("click", () => {
      // Free typing: the system's own keyboard and input method.
      $("case").setAttribute("inputmode", "text");
      $("case").focus();
    });
    board.append(back, clear, typing);
  }

  function typeKey(key) {
    const input = $("case");
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    if (key === "\b") {
      const from = start === end ? Math.max(start - 1, 0) : start;
      input.value = input.value.slice(0, from) + input.value.slice(end);
      input.setSelectionRange(from, from);
    } else {
      input.value = input.value.slice(0, start) + key + input.value.slice(end);
      input.setSelectionRange(start + key.length, start + key.length);
    }
    showCheck();
  }

  function showCheck() {
    const typed = $("case").value;
    const found = checkNumber(typed);
    const line = $("case-check");
    line.textContent = found.why;
    line.className = `check ${found.ok ? "good" : typed ? "bad" : ""}`;
    $("case").className = found.ok ? "good" : typed ? "bad" : "";
    $("tag-save").disabled = !typed;
    return found;
  }

  function result(text, good) {
    const node = $("tag-result");
    node.textContent = text;
    node.className = `result ${good ? "good" : "bad"}`;
    node.hidden = false;
  }

  function openTag(s) {
    state.tagging = s;
    $("tag-title").textContent = t("tag_title", { who: who(s) });
    $("case").value = "";
    $("case").setAttribute("inputmode", "none");
    $("proof").value = "";
    $("tag-result").hidden = true;
    showCheck();
    $("tag").hidden = false;
  }

  function closeTag() {
    state.tagging = null;
    $("tag").hidden = true;
  }

  async function saveTag() {
    const s = state.tagging;
    const found = showCheck();
    if (!found.ok) {
      result(t("refused", { why: found.why }), false);
      return;
    }
    if (!state.canLink) {
      result(t("no_link_route"), false);
      return;
    }
    const body = { session_id: s.session_id };
    const proof = $("proof").value.trim();
    if (proof) body.object_of_proof = proof;
    try {
      const answer = await api(`/api/v1/cases/${encodeURIComponent(found.number)}/links`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const number = (answer && (answer.case_number || answer.number)) || found.number;
      state.tags.set(s.session_id, number);
      const already = answer && answer.outcome === "already linked";
      result(t(already ? "already" : "saved", { number }), true);
      render();
    } catch (e) {
      if (e.status === 404 && e.code === "not_found" && /no such route/.test(e.message)) {
        state.canLink = false;
        result(t("no_link_route"), false);
      } else {
        result(t("refused", { why: e.message }), false);
      }
    }
  }

  // --- setup: the kiosk's token ---------------------------------------------------------

  function askToken(why) {
    $("setup").hidden = false;
    $("setup-error").hidden = !why;
    $("setup-error").textContent = why ? t("setup_bad", { why }) : "";
    setLive("offline");
  }

  async function loadRule() {
    state.rule = await api("/api/v1/cases/rule");
    state.regex = null;
    if (state.rule.regex) {
      try {
        state.regex = new RegExp(`^(?:${state.rule.regex})$`, "u");
      } catch (e) {
        state.regex = null; // the station checks the number when it is used
      }
    }
    buildKeyboard();
  }

  async function start() {
    try {
      await loadRule();
    } catch (e) {
      if (e.status === 401 || e.status === 403) return askToken(e.message);
    }
    $("setup").hidden = true;
    watch();
  }

  function takeTokenFromUrl() {
    // #token=... : handed over once (the fragment never reaches the server), then kept.
    const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    state.token = localStorage.getItem(TOKEN_KEY) || "";
  }

  function touched() {
    clearTimeout(state.idle);
    if (state.lang !== home) {
      state.idle = setTimeout(() => { state.lang = home; translate(); }, IDLE_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromUrl();
    translate();
    $("lang").addEventListener("click", () => {
      state.lang = state.lang === "en" ? "zh-CN" : "en";
      translate();
      touched();
    });
    document.addEventListener("pointerdown", touched, true);
    $("case").addEventListener("input", showCheck);
    $("tag-save").addEventListener("click", saveTag);
    $("tag-cancel").addEventListener("click", closeTag);
    $("setup-save").addEventListener("click", () => {
      const token = $("token").value.trim();
      if (!token) return;
      localStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      $("token").value = "";
      start();
    });
    if (!state.token) askToken("");
    else start();
  });
})();
