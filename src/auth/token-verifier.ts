// Token verification (docs/design.md §6): an HS256 JWT signed with AUTH_JWT_SECRET, given as
// `?token=` or `Authorization: Bearer`. The user id is `sub`, the display name the `name` claim.

import { errors as joseErrors, jwtVerify } from 'jose';
import { TOKEN_NAME_MAX_LENGTH, USER_ID_MAX_LENGTH } from '../protocol/limits.js';
import { storableText } from '../presence/storable-text.js';

export interface VerifiedToken {
  userId: string;
  name: string;
  /** Epoch ms at which the token expires, if it says. */
  expiresAt: number | undefined;
}

export type TokenCheck = { ok: true; token: VerifiedToken } | { ok: false; message: string };

export class TokenVerifier {
  private readonly secret: Uint8Array;

  constructor(secret: string) {
    this.secret = new TextEncoder().encode(secret);
  }

  /** Never throws: a bad token is a refusal with a reason a person can read. */
  async verify(token: string): Promise<TokenCheck> {
    try {
      const { payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'] });
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > USER_ID_MAX_LENGTH || storableText(sub) !== sub) {
        return { ok: false, message: 'token has no usable "sub"' };
      }
      const claimed = typeof payload.name === 'string' && payload.name.length > 0 ? payload.name : sub;
      return {
        ok: true,
        token: {
          userId: sub,
          name: storableText(claimed.slice(0, TOKEN_NAME_MAX_LENGTH)),
          expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
        },
      };
    } catch (err) {
      return { ok: false, message: err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token' };
    }
  }
}
