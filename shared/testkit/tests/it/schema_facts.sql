-- One line per fact of a schema: columns (type, nullability, default, generation), indexes,
-- constraints, enum types and functions. Run with search_path = the schema, so names print unqualified.
-- $1 = schema name. Used by tests/it/schema.rs; fixtures/gotrue_schema.txt holds GoTrue's v2.196.0 facts.
SELECT fact FROM (
    SELECT format('column %s.%s %s%s null=%s default=%s generated=%s',
                  c.table_name, c.column_name, c.data_type,
                  coalesce('(' || c.character_maximum_length || ')', ''),
                  c.is_nullable, coalesce(c.column_default, ''), coalesce(c.generation_expression, '')) AS fact,
           c.table_name AS tbl
    FROM information_schema.columns c
    WHERE c.table_schema = $1
    UNION ALL
    SELECT format('index %s %s', i.indexname, replace(i.indexdef, ' ON ' || quote_ident($1) || '.', ' ON ')), i.tablename
    FROM pg_indexes i
    WHERE i.schemaname = $1
    UNION ALL
    SELECT format('constraint %s %s %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid)),
           k.conrelid::regclass::text
    FROM pg_constraint k
    WHERE k.connamespace = $1::regnamespace AND k.contype <> 'n'
    UNION ALL
    SELECT format('enum %s %s', t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)), ''
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
    WHERE t.typnamespace = $1::regnamespace
    GROUP BY t.typname
    UNION ALL
    SELECT format('function %s() returns %s', p.proname, pg_get_function_result(p.oid)), ''
    FROM pg_proc p
    WHERE p.pronamespace = $1::regnamespace
      -- an extension's functions are the extension's (pg_trgm lands here when no other schema can take it)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('rls %s %s', r.relname, r.relrowsecurity), r.relname
    FROM pg_class r
    WHERE r.relnamespace = $1::regnamespace AND r.relkind = 'r'
) facts
-- the suite's own objects: its first tables, and every table, index and function named suite_*
WHERE tbl NOT IN ('outbox_messages', 'notification_deliveries', 'send_rate_limits', '_sqlx_migrations')
  AND tbl NOT LIKE 'suite\_%'
  AND fact NOT LIKE 'index suite\_%' AND fact NOT LIKE 'function suite\_%'
ORDER BY fact
