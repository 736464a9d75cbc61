package com.example.stock.app;

import com.example.stock.core.Ledger;
import com.example.stock.core.Movement;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Applies the movements shipped with the app and prints stock levels and what to reorder. */
public final class StockReport {
    static final int REORDER_BELOW = 20;

    private StockReport() {}

    /** The report's lines for these movement lines (blank lines and # comments skipped). */
    static List<String> report(List<String> movementLines) {
        Ledger ledger = new Ledger();
        int applied = 0;
        for (String line : movementLines) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            ledger.apply(Movement.parse(line));
            applied++;
        }
        List<String> lines = new ArrayList<>();
        lines.add("Applied " + applied + " movements to " + ledger.levels().size() + " SKUs");
        for (Map.Entry<String, Integer> entry : new java.util.TreeMap<>(ledger.levels()).entrySet()) {
            lines.add(String.format("  %-10s %5d", entry.getKey(), entry.getValue()));
        }
        lines.add("Reorder (below " + REORDER_BELOW + "): " + String.join(", ", ledger.belowThreshold(REORDER_BELOW)));
        return lines;
    }

    public static void main(String[] args) throws IOException {
        List<String> movementLines = new ArrayList<>();
        try (InputStream in = StockReport.class.getResourceAsStream("/movements.csv");
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            reader.lines().forEach(movementLines::add);
        }
        report(movementLines).forEach(System.out::println);
    }
}
