-- Umlaut folding of BM25 lexemes (see keywords.py): index and queries fold the same way.
create function enclave_fold(lexeme text) returns text
language sql immutable parallel safe as $$
    select translate(replace(lexeme, 'ß', 'ss'), 'äöü', 'aou')
$$;
grant execute on function enclave_fold(text) to enclave_reader;

-- Re-derive the postings: two lexemes that fold alike become one posting with summed tf.
truncate postings;
insert into postings (lexeme, chunk_id, document_id, tf, term_count)
select enclave_fold(u.lexeme), c.id, c.document_id,
       sum(coalesce(array_length(u.positions, 1), 1)), c.term_count
from chunks c cross join lateral unnest(c.tsv) u
group by 1, c.id, c.document_id, c.term_count;
