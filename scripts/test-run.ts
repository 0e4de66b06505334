export async function runTests(_argv: string[]): Promise<void> {}
