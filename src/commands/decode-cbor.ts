import { Option } from 'clipanion';
import { LitebootError } from '../errors.js';
import { decodeCborResponse, responseAsJson, WireError, type ResponseKind } from '../protocol/responses.js';
import { BaseCommand, readUserFile, usage } from './base.js';

const KINDS = ['cc', 'cs', 'ds', 'csr', 'ccs', 'auto'] as const;

export class DecodeCborCommand extends BaseCommand {
  static override paths = [['decode-cbor']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Tools',
    description: 'decode a CBOR response body and print it as the server\'s JSON',
    details: `
      Reads a CBOR body saved from the API (\`curl -H 'Content-Type: application/cbor' -o body.cbor ...\`)
      and prints it exactly as the server's JSON would be: PascalCase keys, exact 64-bit serials, the
      certificate in base64 for \`csr\` (a /cr or /kur response) and PEM for \`cc\`.

      \`-r\` names the response: \`csr\` (/cr, /kur), \`cs\`, \`ds\`, \`cc\`, \`ccs\`, or \`auto\` (the default) to guess
      from its structure. A body that is not the named kind is an error that says what was found.
    `,
    examples: [
      ['Decode a device status response', '$0 decode-cbor -i ds.cbor -r ds'],
      ['Decode from standard input', "curl ... -H 'Content-Type: application/cbor' $API/ccs | $0 decode-cbor -i - -r ccs"],
    ],
  });

  input = Option.String('-i,--input', { description: 'The CBOR file, or - for standard input (required)' });
  kind = Option.String('-r,--response', 'auto', { description: 'cc, cs, ds, csr, ccs or auto' });

  protected async run(): Promise<number> {
    if (!(KINDS as readonly string[]).includes(this.kind)) throw usage(`-r must be one of ${KINDS.join(', ')}, not "${this.kind}"`);
    // Not a required option for clipanion: its refusal is "Command not found" and a usage dump.
    if (this.input === undefined) throw usage('decode-cbor needs -i FILE (the CBOR body; - for standard input)');
    const body = readUserFile(this.input);
    try {
      const r = decodeCborResponse(body, this.kind as ResponseKind | 'auto');
      this.print(responseAsJson(r));
      return r.kind === 'error' ? 1 : 0;
    } catch (e) {
      if (e instanceof WireError) throw new LitebootError('UNRECOGNISED_INPUT', `${this.input}: ${e.message}`);
      throw e;
    }
  }
}
