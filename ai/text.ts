/**
 * Text as the keyword tables see it: lower case, French accents and Arabic diacritics (tashkil,
 * tatweel) removed, Arabic letter variants folded (أ إ آ → ا, ة → ه, ى → ي), punctuation to
 * spaces. The same function normalises the tables, so entries may be written naturally.
 */
export function normaliseText(text: string): string {
  return ` ${text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\u064b-\u065f\u0670\u0640]/g, '')
    .replace(/[أإآٱ]/g, 'ا')
    .replace(/ة/g, 'ه')
    .replace(/ى/g, 'ي')
    .toLowerCase()
    .replace(/[’']/g, "'")
    .replace(/[^\p{L}\p{N}'-]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()} `;
}

/**
 * Positions where `keyword` (normalised) starts a word in `text` (normalised, space-padded).
 * A keyword matches at a word start and may be a prefix of the word (`enfonc` in `enfoncée`),
 * and the Arabic article or a conjunction (ال، و، ب) may precede it.
 */
export function findKeyword(text: string, keyword: string): number[] {
  const k = normaliseText(keyword).trim();
  if (!k) return [];
  const at: number[] = [];
  for (let i = text.indexOf(k); i >= 0; i = text.indexOf(k, i + 1)) {
    const before = text.slice(Math.max(0, i - 5), i);
    if (/ $/.test(before) || / (?:ال|و|ب|وال|بال)$/.test(before)) at.push(i);
  }
  return at;
}
