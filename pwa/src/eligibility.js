// The eligibility rule evaluator for the phone, so a worker sees likely services offline.
// It mirrors backend/matching/engine.py exactly (three-valued, Kleene logic, booleans are not
// numbers, a missing fact or parameter is "unknown", never a crash); the server's answer is the
// authoritative one. Both run the shared vectors in tests/vectors/.

export const MET = 'met';
export const UNMET = 'unmet';
export const UNKNOWN = 'unknown';
const ORDERING = new Set(['<', '<=', '>', '>=']);

function kind(value) {
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isFinite(value) ? 'number' : null;
  if (typeof value === 'string') return 'string';
  return null;
}

function same(a, b) {
  const kindA = kind(a);
  if (kindA === null || kindA !== kind(b)) return null;
  return a === b;
}

function resolve(value, params) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const name = value.param;
    if (!Object.prototype.hasOwnProperty.call(params, name) || params[name] === null || params[name] === undefined) {
      return [false, null];
    }
    const base = params[name];
    const times = value.times === undefined ? 1 : value.times;
    if (times !== 1) {
      if (kind(base) !== 'number' || kind(times) !== 'number') return [false, null];
      return [true, base * times];
    }
    return [true, base];
  }
  return [true, value];
}

function compare(op, actual, expected) {
  if (ORDERING.has(op)) {
    if (kind(actual) !== 'number' || kind(expected) !== 'number') return UNKNOWN;
    const held = { '<': actual < expected, '<=': actual <= expected, '>': actual > expected, '>=': actual >= expected }[op];
    return held ? MET : UNMET;
  }
  if (op === '==' || op === '!=') {
    const equal = same(actual, expected);
    if (equal === null) return UNKNOWN;
    return equal === (op === '==') ? MET : UNMET;
  }
  if (op === 'in') {
    if (!Array.isArray(expected) || kind(actual) === null) return UNKNOWN;
    return expected.some((option) => same(actual, option) === true) ? MET : UNMET;
  }
  if (op === 'has') {
    if (!Array.isArray(actual) || kind(expected) === null) return UNKNOWN;
    return actual.some((item) => same(item, expected) === true) ? MET : UNMET;
  }
  return UNKNOWN;
}

function combine(which, outcomes) {
  const [decisive, other] = which === 'all' ? [UNMET, MET] : [MET, UNMET];
  if (outcomes.includes(decisive)) return decisive;
  if (outcomes.includes(UNKNOWN)) return UNKNOWN;
  return other;
}

function walk(node, facts, params, leaves) {
  if ('all' in node || 'any' in node) {
    const which = 'all' in node ? 'all' : 'any';
    return combine(which, node[which].map((part) => walk(part, facts, params, leaves)));
  }
  if ('not' in node) {
    const inner = walk(node.not, facts, params, leaves);
    return inner === MET ? UNMET : inner === UNMET ? MET : UNKNOWN;
  }
  const [resolved, expected] = resolve(node.value, params);
  const actual = Object.prototype.hasOwnProperty.call(facts, node.fact) ? facts[node.fact] : null;
  const outcome = resolved && actual !== null && actual !== undefined ? compare(node.op, actual, expected) : UNKNOWN;
  leaves.push({ fact: node.fact, op: node.op, expected, actual, outcome });
  return outcome;
}

/** Evaluate one rule: {verdict: 'eligible'|'possible'|'ineligible', leaves, missing}. */
export function evaluate(rule, facts, params) {
  const leaves = [];
  const outcome = walk(rule, facts || {}, params || {}, leaves);
  const verdict = outcome === MET ? 'eligible' : outcome === UNMET ? 'ineligible' : 'possible';
  const missing = [];
  for (const leaf of leaves) {
    if (leaf.outcome === UNKNOWN && !missing.includes(leaf.fact)) missing.push(leaf.fact);
  }
  return { verdict, leaves, missing };
}

/** Every service of a rule set, likely ones first; missing facts only where they still matter. */
export function matchAll(rules, facts) {
  const order = { eligible: 0, possible: 1, ineligible: 2 };
  return Object.keys(rules.services)
    .map((code) => {
      const result = evaluate(rules.services[code].when, facts, rules.params);
      return {
        service: code,
        verdict: result.verdict,
        ruleVersion: rules.version,
        missing: result.verdict === 'possible' ? result.missing : [],
        materials: rules.services[code].materials || [],
        leaves: result.leaves,
      };
    })
    .sort((a, b) => order[a.verdict] - order[b.verdict] || (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
}

// --- reasons a worker can read aloud, in the server's words (backend/matching/explain.py) ---------
const OP_WORDS = { '<': ['低于', 'below'], '<=': ['不超过', 'at most'], '>': ['高于', 'above'], '>=': ['至少', 'at least'], '==': ['为', 'is'], '!=': ['不为', 'is not'], in: ['属于', 'one of'], has: ['包含', 'includes'] };

function sayValue(value, fact, zh, optionLabel) {
  if (typeof value === 'boolean') return zh ? (value ? '是' : '否') : value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.map((v) => sayValue(v, fact, zh, optionLabel)).join(zh ? '、' : ', ');
  // An enum's code (e.g. "marginal") is said by its label (低保边缘); a code without one stays as it is.
  if (typeof value === 'string') return (fact && optionLabel && optionLabel(fact.name, value)) || value;
  const unit = fact ? (zh ? fact.unit_zh : fact.unit_en) || '' : '';
  return zh ? `${value}${unit}` : `${value} ${unit}`.trim();
}

/**
 * One leaf of an evaluated rule as a sentence: "符合：救助类别属于低保、特困（实际：低保）".
 * `fact`: the rules' description of the fact ({name, label_zh, label_en, unit_zh, unit_en});
 * `zh`: Chinese or English; `optionLabel(fact, code)`: an enum option's label in that language, or null.
 */
export function explainLeaf(leaf, fact, { zh = true, optionLabel = null } = {}) {
  const label = fact ? (zh ? fact.label_zh : fact.label_en) : leaf.fact;
  let condition;
  if ((leaf.op === '==' || leaf.op === '!=') && typeof leaf.expected === 'boolean') {
    const positive = leaf.expected === (leaf.op === '==');
    condition = positive ? label : zh ? `并非${label}` : `not ${label}`;
  } else {
    const [opZh, opEn] = OP_WORDS[leaf.op] || [leaf.op, leaf.op];
    const expected = sayValue(leaf.expected, fact, zh, optionLabel);
    condition = zh ? `${label}${opZh}${expected}` : `${label} ${opEn} ${expected}`;
  }
  if (leaf.outcome === UNKNOWN) return zh ? `尚不清楚：${condition}` : `Not known yet: ${condition}`;
  const actual = sayValue(leaf.actual, fact, zh, optionLabel);
  if (leaf.outcome === MET) return zh ? `符合：${condition}（实际：${actual}）` : `Meets: ${condition} (actual: ${actual})`;
  return zh ? `不符合：${condition}（实际：${actual}）` : `Does not meet: ${condition} (actual: ${actual})`;
}
