-- Postings found by word and then by document. A user who may read a small share of the
-- chunks is searched with the permitted documents as an array the index is probed with, so
-- PostgreSQL skips between them instead of reading every posting of the query's words and
-- filtering. On 1,070,849 real chunks, 2 cores, BM25 alone p50 (benchmarks/RESULTS.md): 1 %
-- readable 12.2 -> 3.9 ms, 3 % 13.4 -> 8.5, 8 % 18.2 -> 15.8; from ~15 % on filtering is as
-- fast, and keyword search filters there. 1,469 MB there, against 1,591 for the index replaced.
create index postings_words on postings (lexeme, document_id) include (chunk_id, tf, term_count);
drop index postings_lexeme;
