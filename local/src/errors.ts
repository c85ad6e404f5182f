/** A problem the person running npm start can fix; shown as its message alone, without a stack. */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}
