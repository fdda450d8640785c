// PostGraphile 5 as the field's best: the Amber preset, the bench database's public schema,
// no GraphiQL, no watch mode. bench/peer.py sets DATABASE_URL and PORT.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

export default {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: 16 },
    }),
  ],
  grafserv: { port: Number(process.env.PORT), host: "127.0.0.1", graphiql: false, watch: false },
  grafast: { explain: false },
};
