// Decodes records with Kafka Connect's own JsonConverter, as a Connect sink or a Debezium
// JSON consumer would, and prints what Connect sees, one JSON line per record:
//   stdin:  <topic> TAB <schemas.enable true|false> TAB <key|value> TAB <base64 record bytes>
//   stdout: {"schema": <name or null>, "fields": [...], "value": <the Connect value>}
// Structs print as objects, bytes as base64, decimals (org.apache.kafka.connect.data.Decimal,
// read with the scale the schema gives) as plain decimal strings. Run by
// tests/postgres/json_output.rs with the classpath scripts/stack.d/connect-json.sh resolves.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;

public class JsonRead {
    static Object plain(Object v) {
        if (v instanceof Struct s) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Field f : s.schema().fields()) {
                m.put(f.name(), plain(s.get(f)));
            }
            return m;
        }
        if (v instanceof Map<?, ?> map) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                m.put(String.valueOf(e.getKey()), plain(e.getValue()));
            }
            return m;
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>();
            for (Object o : l) {
                out.add(plain(o));
            }
            return out;
        }
        if (v instanceof byte[] b) {
            return Base64.getEncoder().encodeToString(b);
        }
        if (v instanceof java.nio.ByteBuffer bb) {
            byte[] b = new byte[bb.remaining()];
            bb.duplicate().get(b);
            return Base64.getEncoder().encodeToString(b);
        }
        if (v instanceof BigDecimal d) {
            return d.toPlainString();
        }
        return v;
    }

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", 4);
            JsonConverter conv = new JsonConverter();
            conv.configure(Map.of("schemas.enable", parts[1]), parts[2].equals("key"));
            byte[] bytes = Base64.getDecoder().decode(parts[3]);
            SchemaAndValue sv = conv.toConnectData(parts[0], bytes);
            Map<String, Object> out = new LinkedHashMap<>();
            Schema schema = sv.schema();
            out.put("schema", schema == null ? null : schema.name());
            List<String> fields = new ArrayList<>();
            if (schema != null && schema.type() == Schema.Type.STRUCT) {
                for (Field f : schema.fields()) {
                    fields.add(f.name());
                }
            }
            out.put("fields", fields);
            out.put("value", plain(sv.value()));
            System.out.println(json.writeValueAsString(out));
        }
    }
}
