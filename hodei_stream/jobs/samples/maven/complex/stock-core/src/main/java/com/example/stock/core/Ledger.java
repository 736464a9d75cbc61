package com.example.stock.core;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/** Stock levels per SKU, from the movements applied so far; refuses to ship what is not there. */
public final class Ledger {
    private final Map<String, Integer> levels = new TreeMap<>();

    public void apply(Movement movement) {
        int level = levels.getOrDefault(movement.sku(), 0) + movement.units();
        if (level < 0) {
            throw new IllegalStateException(
                "cannot ship " + -movement.units() + " of " + movement.sku() + ": only " + (level - movement.units()) + " in stock");
        }
        levels.put(movement.sku(), level);
    }

    public int level(String sku) {
        return levels.getOrDefault(sku, 0);
    }

    public Map<String, Integer> levels() {
        return Map.copyOf(levels);
    }

    /** SKUs whose level is below {@code threshold}, in SKU order. */
    public List<String> belowThreshold(int threshold) {
        return levels.entrySet().stream()
            .filter(entry -> entry.getValue() < threshold)
            .map(Map.Entry::getKey)
            .collect(Collectors.toList());
    }
}
