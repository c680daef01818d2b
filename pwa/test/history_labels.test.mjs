// A task's history entries are shown by kind: every kind the server writes must read as words, in
// both languages, not as its code (the server's history derives "created" and "warning_joined").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { has, setLang, t } from '../src/i18n.js';

globalThis.document = globalThis.document || { documentElement: {} }; // setLang marks the page

const KINDS = ['created', 'warning_joined', 'accepted', 'visited', 'returned', 'closed', 'reassigned'];

for (const lang of ['zh-CN', 'en']) {
  test(`history kinds have ${lang} labels`, () => {
    setLang(lang);
    for (const kind of KINDS) {
      assert.ok(has(`ev_${kind}`), `no label for ${kind}`);
      assert.notEqual(t(`ev_${kind}`), `ev_${kind}`);
    }
  });
}
