package com.example.stock.app;

import static org.junit.Assert.assertEquals;

import java.util.List;
import org.junit.Test;

public class StockReportTest {
    @Test
    public void reportsLevelsAndReorders() {
        List<String> lines = StockReport.report(List.of("# header", "A,30", "B,5", "", "A,-12"));
        assertEquals("Applied 3 movements to 2 SKUs", lines.get(0));
        assertEquals("  A             18", lines.get(1));
        assertEquals("  B              5", lines.get(2));
        assertEquals("Reorder (below 20): A, B", lines.get(3));
    }
}
