// The phone's rule evaluator must give the server's verdicts: same vectors, run under node --test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { evaluate, matchAll } from '../src/eligibility.js';

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
