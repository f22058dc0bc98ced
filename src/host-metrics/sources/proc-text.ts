/** The rest of the line of a /proc file that starts with `prefix`, or undefined. Avoids splitting the whole file. */
export function lineAfter(text: string, prefix: string): string | undefined {
  let start: number
  if (text.startsWith(prefix)) start = 0
  else {
    const at = text.indexOf(`\n${prefix}`)
    if (at === -1) return undefined
    start = at + 1
  }
  const end = text.indexOf('\n', start)
  return text.slice(start + prefix.length, end === -1 ? undefined : end)
}
