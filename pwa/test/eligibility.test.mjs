// The phone's rule evaluator must give the server's verdicts: same vectors, run under node --test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { evaluate, explainLeaf, matchAll } from '../src/eligibility.js';
import { has, setLang, t } from '../src/i18n.js';

const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), 'utf8'));

for (const item of vectors('eligibility_cases.json').cases) {
  test(`rule semantics: ${item.name}`, () => {
    const result = evaluate(item.rule, item.facts, item.params);
    assert.equal(result.verdict, item.verdict);
    assert.deepEqual(result.leaves.map((leaf) => leaf.outcome), item.leaves);
    assert.deepEqual(result.missing, item.missing);
  });
}

const catalogue = vectors('eligibility_catalogue.json');
catalogue.rules = JSON.parse(readFileSync(new URL(`../../${catalogue.rules_file}`, import.meta.url), 'utf8'));
for (const household of catalogue.households) {
  test(`catalogue verdicts: ${household.name}`, () => {
    const found = matchAll(catalogue.rules, household.facts).map((m) => [m.service, m.verdict, m.missing]);
    assert.deepEqual(found, household.expected);
  });
}

// --- reasons read aloud: the server's sentences (backend/matching/explain.py), enum codes by label ----
const FACTS = {
  category: { name: 'category', label_zh: '救助类别', label_en: 'assistance category', unit_zh: '', unit_en: '' },
  disability_grade: { name: 'disability_grade', label_zh: '最重残疾等级', label_en: 'most severe disability grade', unit_zh: '级', unit_en: '' },
  rural: { name: 'rural', label_zh: '农村户籍', label_en: 'rural household', unit_zh: '', unit_en: '' },
};
const optionLabel = (fact, code) => (has(`fact_${fact}_${code}`) ? t(`fact_${fact}_${code}`) : null);
const LEAVES = [
  { fact: 'category', op: 'in', expected: ['dibao', 'tekun', 'marginal'], actual: 'marginal', outcome: 'met' },
  { fact: 'category', op: '==', expected: 'dibao', actual: 'none', outcome: 'unmet' },
  { fact: 'disability_grade', op: '<=', expected: 2, actual: null, outcome: 'unknown' },
  { fact: 'rural', op: '==', expected: true, actual: true, outcome: 'met' },
];

test('reasons on the phone are the server\'s sentences, enum options by their labels (zh, en)', () => {
  // Printed by backend.matching.explain for the same leaves.
  const server = [
    ['符合：救助类别属于低保、特困、低保边缘（实际：低保边缘）', 'Meets: assistance category one of dibao, tekun, dibao-marginal (actual: dibao-marginal)'],
    ['不符合：救助类别为低保（实际：无）', 'Does not meet: assistance category is dibao (actual: none)'],
    ['尚不清楚：最重残疾等级不超过2级', 'Not known yet: most severe disability grade at most 2'],
    ['符合：农村户籍（实际：是）', 'Meets: rural household (actual: yes)'],
  ];
  const zh = LEAVES.map((leaf) => explainLeaf(leaf, FACTS[leaf.fact], { zh: true, optionLabel }));
  globalThis.document = globalThis.document || { documentElement: {} };
  setLang('en');
  try {
    const en = LEAVES.map((leaf) => explainLeaf(leaf, FACTS[leaf.fact], { zh: false, optionLabel }));
    assert.deepEqual(zh.map((z, i) => [z, en[i]]), server);
  } finally {
    setLang('zh-CN');
  }
});

test('every option code the shipped rules compare with has a label to be read aloud', () => {
  const codes = new Set();
  const walk = (node) => {
    for (const key of ['all', 'any']) if (node[key]) node[key].forEach(walk);
    if (node.not) walk(node.not);
    if (!node.fact) return;
    for (const value of [].concat(node.value)) if (typeof value === 'string') codes.add(`fact_${node.fact}_${value}`);
  };
  for (const service of Object.values(catalogue.rules.services)) walk(service.when);
  assert.ok(codes.size > 0);
  assert.deepEqual([...codes].filter((key) => !has(key)), []);
});

test('without a label a code is said as it is, and verdicts do not depend on the words', () => {
  const leaf = { fact: 'category', op: '==', expected: 'new_scheme', actual: 'new_scheme', outcome: 'met' };
  assert.equal(explainLeaf(leaf, FACTS.category, { zh: true, optionLabel }), '符合：救助类别为new_scheme（实际：new_scheme）');
  assert.equal(explainLeaf(leaf, null, { zh: false }), 'Meets: category is new_scheme (actual: new_scheme)');
});
