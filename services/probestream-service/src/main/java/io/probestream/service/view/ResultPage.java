package io.probestream.service.view;

import java.util.List;

/**
 * One page of an experiment's results that matched a query, in publication order (oldest first).
 * Immutable.
 *
 * @param total how many results matched, across all pages
 * @param offset the query's offset
 * @param limit the query's limit
 * @param results at most {@code limit} results; never null
 */
public record ResultPage(int total, int offset, int limit, List<StoredResult> results) {
  public ResultPage {
    results = List.copyOf(results);
  }
}
