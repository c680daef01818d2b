// One message catalogue: [Simplified Chinese, English]. zh-CN is the default.
const M = {
  app_name: ["网格救助", "GridAid"],
  offline: ["离线", "Offline"],
  online: ["在线", "Online"],
  loading: ["加载中…", "Loading…"],
  back: ["返回", "Back"],
  save: ["保存", "Save"],
  cancel: ["取消", "Cancel"],
  error: ["出错了", "Something went wrong"],
  network_error: ["网络不可用，稍后自动重试", "No connection; will retry automatically"],
  needs_online: ["此操作需要网络", "This needs a connection"],
  new_version: ["新版本已就绪，重新打开应用后生效", "A new version is ready: it starts next time you open the app"],

  // Household categories, as the file records them.
  cat_dibao: ["低保", "Dibao (minimum living allowance)"],
  cat_dibao_marginal: ["低保边缘", "Dibao-marginal"],
  cat_tekun: ["特困", "Tekun (extreme poverty)"],
  cat_expenditure_poverty: ["支出型贫困", "Expenditure-induced poverty"],
  cat_low_income: ["其他低收入", "Other low income"],
  cat_ordinary: ["一般户", "Ordinary"],

  nav_tasks: ["任务", "Tasks"],
  nav_map: ["地图", "Map"],
  nav_inbox: ["消息", "Inbox"],
  nav_outbox: ["待上传", "Outbox"],
  nav_settings: ["设置", "Settings"],
  nav_street: ["街道任务", "Street"],
  nav_street_map: ["街道地图", "Street map"],
  nav_covers: ["代班", "Cover"],
  nav_unplaced: ["未落格", "Unplaced"],
  nav_health: ["同步状态", "Sync health"],

  login_title: ["登录", "Sign in"],
  login_username: ["用户名或手机号", "Username or phone"],
  login_password: ["密码", "Password"],
  login_otp: ["动态验证码（如已绑定）", "One-time code (if enrolled)"],
  login_submit: ["登录", "Sign in"],
  login_failed: ["登录失败", "Sign-in failed"],
  login_expired: [
    "登录已过期，请重新登录。手机上还有 {n} 条记录未上传，它们会保留，登录后自动上传。",
    "Your session has ended: please sign in again. {n} unsent items stay on this phone and upload after you sign in.",
  ],
  login_expired_plain: ["登录已过期，请重新登录。", "Your session has ended: please sign in again."],
  login_other_account: [
    "此手机上有账号 {user} 的 {n} 条未上传记录，只有该账号登录后才会上传。",
    "{n} unsent items of account {user} are on this phone; they upload only when that account signs in.",
  ],
  auth_banner: ["登录已过期，{n} 条记录已保留。", "Session ended; {n} items kept."],
  auth_banner_login: ["重新登录", "Sign in again"],

  tasks_title: ["我的任务", "My tasks"],
  tasks_empty: ["暂无任务", "No tasks"],
  tasks_sync: ["同步", "Sync"],
  tasks_last_sync: ["上次同步：{t}", "Last sync: {t}"],
  tasks_never_synced: ["尚未同步", "Not synced yet"],
  overdue: ["已超期", "Overdue"],
  due: ["期限", "Due"],
  distance: ["距离", "Distance"],
  pending_visit: ["走访待上传", "Visit waiting to upload"],
  warnings_n: ["{n} 条预警", "{n} warnings"],

  state_new: ["新任务", "New"],
  state_accepted: ["已接收", "Accepted"],
  state_visited: ["已走访", "Visited"],
  state_closed: ["已关闭", "Closed"],
  state_returned: ["已退回", "Returned"],

  task_title: ["任务详情", "Task"],
  task_household: ["户信息", "Household"],
  task_code: ["户号", "Code"],
  task_head: ["户主", "Head"],
  task_address: ["地址", "Address"],
  task_category: ["类别", "Category"],
  task_phone: ["电话", "Phone"],
  task_grid: ["网格", "Grid"],
  task_types: ["预警类型", "Warning types"],
  task_history: ["处理记录", "History"],
  task_history_offline: ["离线时无法加载处理记录", "History is not available offline"],
  task_record_visit: ["记录走访", "Record a visit"],
  task_visits: ["走访记录", "Visits"],
  task_visits_none: ["暂无已上传的走访记录", "No uploaded visits yet"],
  task_visit_photos: ["{n} 张照片", "{n} photos"],
  task_accept: ["接收任务", "Accept task"],
  task_missing: ["此任务不在本手机上（可能已改派）。", "This task is not on this phone (it may have been reassigned)."],
  task_pending_visit: ["本任务有 {n} 条走访记录待上传。", "{n} visit(s) for this task are waiting to upload."],
  task_return_reason: ["退回原因", "Return reason"],
  ev_created: ["创建任务", "Task created"],
  ev_warning: ["新预警", "New warning"],
  ev_accept: ["接收任务", "Accepted"],
  ev_accepted: ["接收任务", "Accepted"],
  ev_return: ["退回", "Handed back"],
  ev_returned: ["退回", "Handed back"],
  ev_close: ["关闭", "Closed"],
  ev_closed: ["关闭", "Closed"],
  ev_visited: ["已走访", "Visited"],
  ev_reassigned: ["改派", "Reassigned"],
  ev_regridded: ["网格调整", "Moved to another grid"],
  ev_escalated: ["超期升级", "Escalated"],
  ev_covered: ["代班", "Covered"],

  visit_title: ["走访记录", "Visit"],
  visit_found: ["走访情况", "What you found"],
  visit_needs: ["需求", "Needs"],
  visit_notes: ["备注", "Notes"],
  visit_photos: ["照片（最多 6 张）", "Photos (up to 6)"],
  visit_photo_add: ["拍照 / 选择照片", "Take / choose photos"],
  visit_photo_remove: ["删除", "Remove"],
  visit_photo_busy: ["正在压缩照片…", "Compressing photos…"],
  visit_photo_too_many: ["最多 6 张照片", "At most 6 photos"],
  visit_photo_failed: ["照片无法读取", "A photo could not be read"],
  visit_gps: ["获取位置", "Get position"],
  visit_gps_waiting: ["正在定位…", "Locating…"],
  visit_gps_none: ["未获取位置", "No position"],
  visit_gps_denied: ["无法定位：{e}", "No position: {e}"],
  visit_gps_ok: ["位置 {lat}, {lon}（精度 {acc} 米）", "Position {lat}, {lon} (±{acc} m)"],
  visit_time: ["走访时间", "Visit time"],
  visit_submit: ["保存走访（离线也可以）", "Save visit (works offline)"],
  visit_saved: ["已保存，将自动上传", "Saved; it will upload automatically"],
  visit_found_required: ["请填写走访情况", "Please describe what you found"],

  need_food: ["食物", "Food"],
  need_medical: ["医疗", "Medical care"],
  need_medicine: ["药品", "Medicine"],
  need_heating: ["取暖", "Heating"],
  need_housing: ["住房", "Housing"],
  need_cash: ["生活费", "Cash support"],
  need_care: ["照护", "Care"],
  need_disability: ["残疾辅助", "Disability aids"],
  need_education: ["教育", "Education"],
  need_employment: ["就业", "Employment"],
  need_psych: ["心理疏导", "Counselling"],
  need_legal: ["法律援助", "Legal aid"],
  need_other: ["其他", "Other"],

  map_title: ["我的网格", "My grids"],
  map_empty: ["本手机上还没有网格图，请在有网络时同步。", "No grid map on this phone yet: sync when online."],

  inbox_title: ["消息", "Inbox"],
  inbox_empty: ["暂无消息", "No messages"],

  outbox_title: ["待上传", "Outbox"],
  outbox_summary: ["{n} 条记录等待上传", "{n} items waiting to upload"],
  outbox_all_sent: ["全部已上传", "Everything is uploaded"],
  outbox_sync_now: ["立即同步", "Sync now"],
  outbox_kind_visit: ["走访记录", "Visit"],
  outbox_state_pending: ["等待上传", "Waiting"],
  outbox_state_sending: ["上传中", "Uploading"],
  outbox_state_retry: ["稍后重试", "Will retry"],
  outbox_state_needs_attention: ["需要处理", "Needs attention"],
  outbox_attempts: ["尝试 {n} 次", "{n} attempts"],
  outbox_photos: ["照片 {a}/{b} 已上传", "{a}/{b} photos sent"],
  outbox_created: ["记录于 {t}", "Recorded {t}"],
  outbox_attention: ["需要处理（服务器拒绝，重试无法解决）", "Needs attention (the server refused; retrying will not help)"],
  outbox_retry: ["重新排队", "Queue again"],
  outbox_discard: ["放弃此记录", "Discard"],
  outbox_discard_confirm: ["确定放弃此记录？放弃后无法恢复。", "Discard this item? It cannot be recovered."],
  outbox_last_error: ["上次错误：{e}", "Last error: {e}"],
  outbox_other: ["此手机上另有 {n} 条其他账号的记录（{users}），需该账号登录后上传。", "{n} items of other accounts ({users}) are on this phone; they upload when that account signs in."],
  outbox_auth: ["需要重新登录后才能上传", "Sign in again to upload"],

  settings_title: ["设置", "Settings"],
  role_grid_worker: ["网格员", "grid worker"],
  role_supervisor: ["街道管理员", "street supervisor"],
  role_admin: ["管理员", "administrator"],
  role_department_officer: ["部门人员", "department officer"],
  role_resident: ["居民", "resident"],
  settings_user: ["当前账号：{name}（{user}，{role}）", "Signed in as {name} ({user}, {role})"],
  settings_language: ["语言", "Language"],
  settings_push: ["消息推送", "Push notifications"],
  settings_push_on: ["已开启", "On"],
  settings_push_off: ["未开启", "Off"],
  settings_push_unsupported: ["此浏览器不支持推送", "This browser does not support push"],
  settings_push_denied: ["推送权限被拒绝，请在系统设置中允许", "Permission denied: allow notifications in the system settings"],
  settings_ios_guide: [
    "iPhone 用户：请先点 Safari 的“分享”按钮，选择“添加到主屏幕”，再从主屏幕打开本应用，然后开启推送。",
    "On iPhone: tap Safari's Share button, choose “Add to Home Screen”, open the app from the home screen, then turn push on.",
  ],
  settings_basemap: ["底图地址（可留空）", "Basemap URL template (optional)"],
  settings_signout: ["退出登录", "Sign out"],
  settings_signout_refused: [
    "还有 {n} 条记录未上传，不能退出：退出会让它们无法以您的名义上传。请先联网并点“立即同步”。",
    "{n} items are not uploaded yet, so you cannot sign out: they could no longer be sent in your name. Go online and tap “Sync now” first.",
  ],
  settings_version: ["版本 {v}", "Version {v}"],

  street_title: ["街道任务", "Street tasks"],
  filter_overdue: ["超期", "Overdue"],
  filter_grid: ["网格", "Grid"],
  filter_worker: ["网格员", "Worker"],
  filter_type: ["类型", "Type"],
  filter_state: ["状态", "State"],
  filter_any: ["全部", "Any"],
  filter_yes: ["是", "Yes"],
  filter_no: ["否", "No"],
  filter_apply: ["筛选", "Filter"],
  select_all: ["全选", "Select all"],
  selected_n: ["已选 {n} 项", "{n} selected"],
  reassign_to: ["改派给", "Reassign to"],
  reassign_reason: ["改派原因", "Reason"],
  reassign_submit: ["改派", "Reassign"],
  reassign_done: ["已改派 {n} 项", "{n} reassigned"],
  reassign_pick: ["请选择任务、网格员并填写原因", "Pick tasks, a worker and a reason"],
  street_empty: ["没有符合条件的任务", "No tasks match"],
  assignee: ["负责人", "Assignee"],

  street_map_title: ["街道网格", "Street grids"],
  legend_overdue: ["有超期", "Overdue work"],
  legend_open: ["有待办", "Open work"],
  legend_clear: ["无待办", "Nothing open"],

  covers_title: ["代班安排", "Absence cover"],
  cover_worker: ["请假网格员", "Absent worker"],
  cover_substitute: ["代班网格员", "Substitute"],
  cover_start: ["开始日期", "From"],
  cover_end: ["结束日期", "To"],
  cover_reason: ["原因", "Reason"],
  cover_submit: ["安排代班", "Arrange cover"],
  cover_done: ["已安排代班", "Cover arranged"],

  unplaced_title: ["未落格", "Unplaced"],
  unplaced_warnings: ["未匹配的预警", "Unmatched warnings"],
  unplaced_households: ["未落格的户", "Households outside every grid"],
  none: ["无", "None"],

  health_title: ["网格员同步状态", "Workers' sync health"],
  health_worker: ["网格员", "Worker"],
  health_pending: ["待上传", "Waiting"],
  health_attention: ["需处理", "Attention"],
  health_oldest: ["最早未传", "Oldest unsent"],
  health_error: ["最近错误", "Last error"],
  health_reported: ["上报时间", "Reported"],
};

const LANGS = ["zh-CN", "en"];
let lang = (() => {
  try {
    const saved = localStorage.getItem("gridaid.lang");
    if (LANGS.includes(saved)) return saved;
  } catch (_) {}
  return "zh-CN";
})();

export function getLang() {
  return lang;
}

export function setLang(value) {
  if (!LANGS.includes(value)) return;
  lang = value;
  try {
    localStorage.setItem("gridaid.lang", value);
  } catch (_) {}
  document.documentElement.lang = value;
}

export function t(key, params) {
  const entry = M[key];
  let text = entry ? entry[lang === "en" ? 1 : 0] : key;
  if (params) for (const name of Object.keys(params)) text = text.split(`{${name}}`).join(String(params[name]));
  return text;
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(M, key);
}

// A server problem (RFC 9457) in the current language.
export function problemText(problem) {
  if (!problem) return "";
  if (lang === "en") return problem.detail_en || problem.detail || problem.title || "";
  return problem.detail_zh || problem.detail || problem.title || "";
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toLocaleString(lang, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export const NEEDS = [
  "food", "medical", "medicine", "heating", "housing", "cash", "care", "disability",
  "education", "employment", "psych", "legal", "other",
];
